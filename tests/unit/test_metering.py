"""Paid calls that draw no image (describer, embedder) are charged before they are sent, on
the same daily budget as images (docs/decisions/0020); reference uploads are counted a day;
the deployment's daily ceiling sits above every user (docs/decisions/0021). Local adapters."""

from __future__ import annotations

import io
import json
import random
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from werkzeug.test import Client

from sketchgen.adapters.local.deployment_ceiling import (
    MemoryDeploymentCeiling,
    SqliteDeploymentCeiling,
)
from sketchgen.adapters.local.usage_ledger import MemoryUsageLedger
from sketchgen.api.http import Api
from sketchgen.bootstrap import build_api, build_service
from sketchgen.ceiling import MAX_SHARDS, MIN_SHARD_USD, shard_count
from sketchgen.errors import LimitError
from sketchgen.pricing import PRICE_PER_CALL_USD, price_per_call, price_per_image
from sketchgen.services import SketchService
from sketchgen.settings import Settings, get_settings
from tests.helpers.responses import json_of

ALICE = {"Authorization": "Bearer dev:alice"}
BOB = {"Authorization": "Bearer dev:bob"}
EMBED_PRICE = PRICE_PER_CALL_USD["embed"]["gemini-embedding-001"]
DESCRIBE_PRICE = PRICE_PER_CALL_USD["describe"]["gemini-2.5-flash"]


class CountingEmbedder:
    """A real (hashing) embedding that calls itself the paid Gemini model and counts calls."""

    model = "gemini-embedding-001@768"

    def __init__(self) -> None:
        from sketchgen.references import HashingTextEmbedding

        self._inner = HashingTextEmbedding(768)
        self.calls = 0

    def embed(self, texts: Sequence[str], *, task: str = "document") -> list[list[float]]:
        self.calls += 1
        return self._inner.embed(texts)


class CountingDescriber:
    model = "gemini-2.5-flash"

    def __init__(self) -> None:
        self.calls = 0

    def describe(self, png: bytes) -> str:
        self.calls += 1
        return "a small figure in loose ink"


def _png(seed: int) -> bytes:
    image = Image.new("L", (40, 30), 255)
    for x in range(40):
        image.putpixel((x, (x * (seed + 3)) % 30), 0)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _service(
    tmp_path: Path,
    *,
    daily: int = 10,
    uploads: int = 200,
    ceiling_usd: float | None = None,
    describer: CountingDescriber | None = None,
) -> tuple[SketchService, CountingEmbedder]:
    settings = Settings(
        job_store="memory://",
        blob_url=f"file://{tmp_path / 'blobs'}",
        offline=True,
        auth="dev",
        user_daily_images=daily,
        max_reference_uploads_per_day=uploads,
        deployment_daily_usd=ceiling_usd,
    )
    embedder = CountingEmbedder()
    service = build_service(settings, embedder=embedder)
    service.catalog.describer = describer
    return service, embedder


def _client(service: SketchService) -> Client:
    api: Api = build_api(lambda: service, Settings(auth="dev", offline=True))
    return Client(api)


def _style(client: Client, headers: dict[str, str] = ALICE) -> str:
    answer = client.post("/v1/styles", json={"name": "Ink"}, headers=headers)
    assert answer.status_code == 201, answer.get_data(as_text=True)
    return str(json_of(answer)["style_id"])


def _upload(
    client: Client, style_id: str, seed: int, description: str = "", headers: dict[str, str] = ALICE
) -> Any:
    return client.post(
        f"/v1/styles/{style_id}/references",
        data={"image": (io.BytesIO(_png(seed)), "r.png", "image/png"), "description": description},
        headers=headers,
    )


# -- the price rows ------------------------------------------------------------------------------


def test_call_prices_come_from_the_one_table() -> None:
    assert price_per_call("embed", "gemini-embedding-001@768") == EMBED_PRICE
    assert price_per_call("describe", "gemini-2.5-flash") == DESCRIBE_PRICE
    assert price_per_call("embed", "hashing-v1@768") == 0.0  # local, no network
    # An unknown model must never look cheap.
    assert price_per_call("describe", "gemini-9-ultra") == max(
        PRICE_PER_CALL_USD["describe"].values()
    )


# -- metering uploads and edits -----------------------------------------------------------------


def test_each_upload_charges_its_describer_and_embedder_calls(tmp_path: Path) -> None:
    describer = CountingDescriber()
    service, embedder = _service(tmp_path, describer=describer)
    client = _client(service)
    style_id = _style(client)
    assert _upload(client, style_id, 1).status_code == 201  # described and embedded
    assert _upload(client, style_id, 2, description="a fox").status_code == 201  # embedded only
    assert (describer.calls, embedder.calls) == (1, 2)
    usage = client.get("/v1/usage", headers=ALICE).json
    assert usage is not None
    assert usage["model_calls"] == {"describe": 1, "embed": 2}
    assert usage["images_used"] == 3  # every paid call is one of the day's
    assert usage["model_calls_cost_usd"] == pytest.approx(DESCRIBE_PRICE + 2 * EMBED_PRICE)
    assert usage["cost_usd_today"] == pytest.approx(DESCRIBE_PRICE + 2 * EMBED_PRICE)
    assert usage["references_added"] == 2
    assert json_of(client.get("/v1/usage", headers=BOB))["images_used"] == 0


def test_past_the_budget_an_upload_is_refused_with_the_image_429_and_no_call_is_sent(
    tmp_path: Path,
) -> None:
    describer = CountingDescriber()
    service, embedder = _service(tmp_path, daily=3, describer=describer)
    client = _client(service)
    style_id = _style(client)
    assert _upload(client, style_id, 1).status_code == 201  # 2 calls
    refused = _upload(client, style_id, 2)  # needs 2, 1 left
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert json_of(refused)["error"]["code"] == "budget_exhausted"
    assert (describer.calls, embedder.calls) == (1, 1)  # nothing sent for the refused one
    assert len(service.catalog.owned("alice", style_id).references) == 1
    # The same budget refuses a job once the calls have used it.
    job = {"brief": "golf mascot", "style_id": "loose-ink-mascot", "num_images": 2}
    assert client.post("/v1/jobs", json=job, headers=ALICE).status_code == 429


def test_a_reference_edit_that_changes_its_text_charges_one_embedding(tmp_path: Path) -> None:
    service, embedder = _service(tmp_path, daily=2)
    client = _client(service)
    style_id = _style(client)
    sha = _upload(client, style_id, 1, description="a fox").json["sha256"]
    url = f"/v1/styles/{style_id}/references/{sha}"
    assert client.patch(url, json={"description": "a red fox"}, headers=ALICE).status_code == 200
    assert client.patch(url, json={"do_not_use": True}, headers=ALICE).status_code == 200  # no text
    assert embedder.calls == 2
    refused = client.patch(url, json={"description": "a blue fox"}, headers=ALICE)
    assert refused.status_code == 429 and embedder.calls == 2


def test_deleting_and_adding_again_counts_every_upload_of_the_day(tmp_path: Path) -> None:
    service, embedder = _service(tmp_path, daily=100, uploads=3)
    client = _client(service)
    style_id = _style(client)
    for _ in range(3):
        sha = _upload(client, style_id, 1, description="a fox").json["sha256"]
        url = f"/v1/styles/{style_id}/references/{sha}"
        assert client.delete(url, headers=ALICE).status_code == 204
    refused = _upload(client, style_id, 1, description="a fox")
    assert refused.status_code == 429
    assert json_of(refused)["error"]["code"] == "too_many_uploads"
    assert json_of(refused)["error"]["field"] == "references"
    assert embedder.calls == 3


def test_the_offline_embedding_is_free_and_not_counted(tmp_path: Path) -> None:
    settings = Settings(job_store="memory://", blob_url=f"file://{tmp_path}", offline=True)
    service = build_service(settings)
    client = _client(service)
    style_id = _style(client)
    assert _upload(client, style_id, 1, description="a fox").status_code == 201
    usage = client.get("/v1/usage", headers=ALICE).json
    assert usage is not None
    assert usage["images_used"] == 0 and usage["model_calls"] == {}
    assert usage["references_added"] == 1


# -- the deployment's ceiling ---------------------------------------------------------------------


def test_shards_hold_at_least_the_dearest_job_and_are_capped() -> None:
    assert shard_count(1.0) == 1
    assert shard_count(MIN_SHARD_USD * 5.5) == 5
    assert shard_count(1e9) == MAX_SHARDS


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_the_ceiling_is_never_passed_under_concurrency(tmp_path: Path, kind: str) -> None:
    ceiling_usd = MIN_SHARD_USD * 4  # 4 shards
    ceiling = (
        MemoryDeploymentCeiling(ceiling_usd, rng=random.Random(1))
        if kind == "memory"
        else SqliteDeploymentCeiling(tmp_path / "c.sqlite3", ceiling_usd, rng=random.Random(1))
    )
    charge = 0.134
    granted: list[bool] = []
    lock = threading.Lock()

    def spend() -> None:
        for _ in range(40):
            ok = ceiling.charge(charge)
            with lock:
                granted.append(ok)

    threads = [threading.Thread(target=spend) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    status = ceiling.status()
    assert status.spent_usd <= ceiling_usd + 1e-9
    assert status.spent_usd == pytest.approx(sum(granted) * charge)
    # Refused only once full: less than one charge left in each shard at the end.
    assert status.left_usd < status.shards * charge
    assert granted.count(False) > 0 and status.shards == 4


def test_refusals_past_the_ceiling_are_a_429_naming_the_deployment(tmp_path: Path) -> None:
    price = price_per_image("gemini-2.5-flash-image", "1K")
    service, _ = _service(tmp_path, daily=100, ceiling_usd=1.0)
    client = _client(service)
    body = {"brief": "golf mascot", "style_id": "loose-ink-mascot", "num_images": 6}
    admitted = 0
    for n in range(10):  # a user each: no one reaches their own limits
        who = {"Authorization": f"Bearer dev:user{n}"}
        answer = client.post(
            "/v1/jobs", json={**body, "model": "gemini-2.5-flash-image"}, headers=who
        )
        if answer.status_code != 202:
            break
        admitted += 1
    assert answer.status_code == 429
    error = json_of(answer)["error"]
    assert error["code"] == "deployment_budget_exhausted" and error["field"] == "deployment"
    assert admitted == int(1.0 // (6 * price))
    assert int(answer.headers["Retry-After"]) > 0
    # The refused job's images went back to its user.
    usage = client.get("/v1/usage", headers=who).json
    assert usage["images_used"] == 0
    status = service.spend.deployment()
    assert status["spent_usd"] == pytest.approx(admitted * 6 * price)


def test_an_upload_past_the_ceiling_is_refused_and_given_back_to_the_user(tmp_path: Path) -> None:
    service, embedder = _service(tmp_path, daily=100, ceiling_usd=MIN_SHARD_USD)
    assert service.spend is not None and service.spend.ceiling is not None
    assert service.spend.ceiling.charge(MIN_SHARD_USD - EMBED_PRICE / 2)  # nearly full
    client = _client(service)
    style_id = _style(client)
    refused = _upload(client, style_id, 1, description="a fox")
    assert refused.status_code == 429, refused.get_data(as_text=True)
    assert json_of(refused)["error"]["code"] == "deployment_budget_exhausted"
    assert embedder.calls == 0
    usage = client.get("/v1/usage", headers=ALICE).json
    assert usage["images_used"] == 0 and usage["references_added"] == 0


def test_the_cli_shows_the_deployments_day(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sketchgen import bootstrap
    from sketchgen.cli import main

    monkeypatch.delenv("SKETCHGEN_JOB_STORE", raising=False)
    monkeypatch.setenv("SKETCHGEN_DEPLOYMENT_DAILY_USD", "50")
    get_settings.cache_clear()
    data = tmp_path / "serve"
    try:
        settings = Settings(job_store=f"sqlite:///{data / 'jobs.sqlite3'}", deployment_daily_usd=50)
        ceiling = bootstrap.build_deployment_ceiling(settings)
        assert ceiling is not None and ceiling.charge(1.25)
        assert main(["usage", "--deployment", "--data-dir", str(data)]) == 0
        shown = json.loads(capsys.readouterr().out)
        assert shown["ceiling_usd"] == 50 and shown["spent_usd"] == 1.25
        assert shown["left_usd"] == 48.75 and shown["charges"] == 1
        assert shown["day"] == datetime.now(UTC).date().isoformat()
        assert main(["usage", "--data-dir", str(data)]) == 2  # neither a uid nor --deployment
    finally:
        get_settings.cache_clear()


def test_a_user_refused_by_their_own_budget_spends_nothing_of_the_ceiling(tmp_path: Path) -> None:
    service, _ = _service(tmp_path, daily=2, ceiling_usd=10.0)
    assert service.spend is not None
    for _ in range(5):
        with pytest.raises(LimitError):
            service.spend.charge_calls("alice", {"embed": ["gemini-embedding-001"] * 3})
    assert service.spend.deployment()["spent_usd"] == 0
    assert isinstance(service.spend.ledger, MemoryUsageLedger)


def test_a_job_on_a_user_style_charges_the_briefs_embedding(tmp_path: Path) -> None:
    service, embedder = _service(tmp_path, daily=5)
    client = _client(service)
    style_id = _style(client)
    assert _upload(client, style_id, 1, description="a golf mascot").status_code == 201
    job = {"brief": "golf mascot", "style_id": style_id, "num_images": 2}
    assert client.post("/v1/jobs", json=job, headers=ALICE).status_code == 202
    assert embedder.calls == 2  # the reference, then the brief
    usage = client.get("/v1/usage", headers=ALICE).json
    assert usage is not None
    assert usage["model_calls"] == {"embed": 2} and usage["images_used"] == 4
    # One left: the job's image is reserved, then its brief's embedding is refused (nothing
    # sent) and the image given back.
    refused = client.post("/v1/jobs", json={**job, "num_images": 1}, headers=ALICE)
    assert refused.status_code == 429 and embedder.calls == 2
    assert json_of(refused)["error"]["field"] == "style_id"
    assert json_of(client.get("/v1/usage", headers=ALICE))["images_used"] == 4
