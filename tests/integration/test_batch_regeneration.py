"""Scheduled regeneration through the Gemini Batch API: the real google-genai SDK against
the local Gemini-protocol server's batch endpoints, on local stores."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sketchgen.adapters.local.blob_store import LocalBlobStore
from sketchgen.adapters.local.job_store import MemoryJobStore
from sketchgen.api.push import handle_regenerate
from sketchgen.bootstrap import assemble
from sketchgen.errors import NoImageError
from sketchgen.generate.nano_banana import NanoBananaAdapter
from sketchgen.generate.retry import RetryPolicy
from sketchgen.jobs import JobRequest
from sketchgen.metadata import JobMetadata
from sketchgen.ports import ImageRequest
from sketchgen.schemas import Variation
from sketchgen.services import ServiceConfig, SketchService
from sketchgen.styles import StyleRegistry
from sketchgen.testing.clock import FakeClock
from sketchgen.testing.gemini_server import FakeGeminiServer
from tests.helpers.fakes import CollectingQueue


@pytest.fixture
def gemini() -> Iterator[FakeGeminiServer]:
    with FakeGeminiServer() as server:
        yield server


@pytest.fixture
def service(gemini: FakeGeminiServer, tmp_path: Path) -> SketchService:
    return assemble(
        jobs=MemoryJobStore(),
        blobs=LocalBlobStore(tmp_path / "blobs"),
        queue=CollectingQueue(),
        model=NanoBananaAdapter("test-key", base_url=gemini.url),
        styles=StyleRegistry(),
        config=ServiceConfig(lease_s=30, lease_wait_s=0, retry=RetryPolicy(max_attempts=1)),
    )


def _finished_job(service: SketchService, owner: str, brief: str, n: int = 2) -> str:
    request = JobRequest(brief=brief, style_id="loose-ink-mascot", num_images=n, seed=5)
    job, _ = service.submission.submit_job(owner, request)
    queue = service.queue
    assert isinstance(queue, CollectingQueue)
    for task in queue.tasks:
        service.worker.run_sketch(task)
    queue.tasks.clear()
    assert service.submission.get_job(owner, job.job_id).status == "done"
    return job.job_id


def _variation() -> Variation:
    return Variation(index=0, layout="centered_full_figure", exaggeration="moderate")


def test_adapter_batch_round_trip_through_the_sdk(gemini: FakeGeminiServer) -> None:
    clock = FakeClock()
    gemini.clock, gemini.batch_delay_s = clock.monotonic, 0.2
    gemini.when("grumpy", "IMAGE_SAFETY")
    adapter = NanoBananaAdapter("test-key", base_url=gemini.url)
    requests = [
        ImageRequest(index=i, prompt=f"{brief} sketch", brief=brief, variation=_variation(),
                     model="flash", aspect_ratio="4:3", image_size="1K", seed=i)
        for i, brief in enumerate(["happy golf mascot", "grumpy cup", "space fox"])
    ]  # fmt: skip
    name = adapter.submit_batch(requests, display_name="test-batch")
    assert name.startswith("batches/")
    first = adapter.batch_status(name)
    assert first.state == "running" and first.results is None and not first.ended
    clock.advance(0.25)  # the batch's time passes on the fake clock, not the wall clock
    done = adapter.batch_status(name)
    assert done.state == "succeeded" and done.results is not None and len(done.results) == 3
    ok, blocked, fox = done.results
    assert not isinstance(ok, Exception) and ok.data.startswith(b"\x89PNG")
    assert isinstance(blocked, NoImageError) and blocked.finish_reason == "IMAGE_SAFETY"
    assert not isinstance(fox, Exception)
    # What the server saw: one batch of three inline requests, with the image config.
    (recorded,) = gemini.batches.values()
    assert recorded["display_name"] == "test-batch" and len(recorded["responses"]) == 3
    assert [r.generation_config.get("imageConfig", {}).get("aspectRatio") for r in
            gemini.requests] == ["4:3"] * 3  # fmt: skip


def test_regenerate_in_batch_stores_results_like_any_sketch(
    service: SketchService, gemini: FakeGeminiServer
) -> None:
    originals = [_finished_job(service, "alice", "playful golf mascot"),
                 _finished_job(service, "bob", "grumpy coffee cup", n=3)]  # fmt: skip
    interactive_calls = gemini.calls()
    gemini.batch_delay_s = 3600  # "results within a day": still running at the first poll

    made = service.batch.regenerate(style_id="loose-ink-mascot", batch=True, run_id="nightly-1")
    assert sorted(j.regenerated_from for j in made) == sorted(originals)
    assert service.queue.tasks == []  # nothing went to the queue
    assert len(gemini.batches) == 1 and gemini.calls() == interactive_calls + 5
    assert all(service.jobs.get_job(j.job_id).batch.name for j in made)

    # The same scheduled run delivered again makes nothing new.
    again = service.batch.regenerate(style_id="loose-ink-mascot", batch=True, run_id="nightly-1")
    assert sorted(j.job_id for j in again) == sorted(j.job_id for j in made)
    assert len(gemini.batches) == 1

    assert service.batch.collect_batches()["batches_waiting"] == 1
    gemini.batch_delay_s = 0
    assert service.batch.collect_batches()["jobs_collected"] == 2
    for job in made:
        stored = service.submission.get_job(job.owner_uid, job.job_id)
        assert stored.status == "done" and stored.batch is None
        assert all(service.blobs.exists(f"jobs/{job.job_id}/sketch_{i}.png")
                   for i in range(len(stored.sketches)))  # fmt: skip
        meta = JobMetadata.model_validate_json(
            service.blobs.get(f"jobs/{job.job_id}/metadata.json")
        )
        assert meta.regenerated_from == job.regenerated_from
        assert all(s.qa and s.qa["passed"] for s in meta.sketches)
    assert gemini.calls() == interactive_calls + 5  # collecting never calls the model
    assert service.batch.collect_batches() == {
        "batches_waiting": 0, "jobs_collected": 0, "jobs_requeued": 0,
    }  # fmt: skip

    # Regenerations are not regenerated again by style (the chain does not grow nightly).
    next_night = service.batch.regenerate(
        style_id="loose-ink-mascot", batch=True, run_id="nightly-2"
    )
    assert sorted(j.regenerated_from for j in next_night) == sorted(originals)


def test_a_failed_batch_falls_back_to_the_queue(
    service: SketchService, gemini: FakeGeminiServer
) -> None:
    original = _finished_job(service, "alice", "playful golf mascot")
    (job,) = service.batch.regenerate(job_ids=[original], batch=True, run_id="r1")
    (batch,) = gemini.batches.values()
    batch["state"] = "BATCH_STATE_EXPIRED"
    assert service.batch.collect_batches()["jobs_requeued"] == 1
    queue = service.queue
    assert isinstance(queue, CollectingQueue)
    assert [(t.job_id, t.index, t.priority) for t in queue.tasks] == [
        (job.job_id, 0, "batch"), (job.job_id, 1, "batch"),
    ]  # fmt: skip
    for task in queue.tasks:
        service.worker.run_sketch(task)
    assert service.submission.get_job("alice", job.job_id).status == "done"


def test_cancelled_while_waiting_on_the_batch(
    service: SketchService, gemini: FakeGeminiServer
) -> None:
    original = _finished_job(service, "alice", "playful golf mascot")
    (job,) = service.batch.regenerate(job_ids=[original], batch=True)
    service.submission.cancel_job("alice", job.job_id)
    service.batch.collect_batches()
    stored = service.submission.get_job("alice", job.job_id)
    assert stored.status == "cancelled"
    assert not service.blobs.exists(f"jobs/{job.job_id}/sketch_0.png")


def test_scheduled_message_handler(service: SketchService, gemini: FakeGeminiServer) -> None:
    original = _finished_job(service, "alice", "playful golf mascot")
    gemini.batch_delay_s = 3600
    data = json.dumps({"job_ids": [original], "batch": True}).encode()
    summary = handle_regenerate(data, "message-1", service.batch, service.upkeep)
    assert summary["jobs_regenerated"] == 1
    assert (
        handle_regenerate(data, "message-1", service.batch, service.upkeep)["jobs_regenerated"] == 1
    )
    assert len(gemini.batches) == 1  # redelivered message: same run, no second batch
    gemini.batch_delay_s = 0
    assert (
        handle_regenerate(b'{"action": "maintain"}', "m2", service.batch, service.upkeep)[
            "jobs_collected"
        ]
        == 1
    )
    assert handle_regenerate(b'{"style_id": 5}', "m3", service.batch, service.upkeep) == {
        "error": "malformed message"
    }
    assert "error" in handle_regenerate(
        b"{}", "m4", service.batch, service.upkeep
    )  # neither style nor jobs


def test_cli_regenerate_batch_offline(tmp_path: Path) -> None:
    data = tmp_path / "serve"
    env_code = (
        "import os, sys; from pathlib import Path;"
        "from sketchgen import bootstrap; from sketchgen.jobs import JobRequest;"
        "s = bootstrap.Instance(bootstrap.local_settings(Path(sys.argv[1]), True)).service();"
        "j, _ = s.submission.submit_job('alice', JobRequest(brief='golf mascot',"
        " style_id='pencil-thumbnail', num_images=2));"
        "s.queue.join(); print(j.job_id)"
    )
    original = subprocess.run([sys.executable, "-c", env_code, str(data)], check=True,
                              capture_output=True, text=True).stdout.strip()  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "sketchgen.cli", "regenerate", "--style", "pencil-thumbnail",
         "--batch", "--offline", "--poll", "0.1", "--data-dir", str(data)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,  # no CLI jobs of its own
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    record = json.loads(line)
    assert record["regenerated_from"] == original and record["status"] == "done"
    assert (data / "blobs" / "jobs" / record["job_id"] / "metadata.json").is_file()

    bad = subprocess.run([sys.executable, "-m", "sketchgen.cli", "regenerate", "--batch"],
                         capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_an_off_style_batch_answer_gets_one_stricter_request_when_collected(
    service: SketchService, gemini: FakeGeminiServer
) -> None:
    from tests.helpers.corpus import HOPELESS, OFF_STYLE

    _finished_job(service, "alice", "playful golf mascot", n=1)
    gemini.script_image(HOPELESS["pure-noise"]())  # the batch's answer: nothing to draw over
    gemini.script_image(OFF_STYLE["portrait"]())  # the stricter request's: a photograph
    (made,) = service.batch.regenerate(style_id="loose-ink-mascot", batch=True)
    assert service.batch.collect_batches()["jobs_collected"] == 1
    stored = service.submission.get_job("alice", made.job_id)
    sketch = stored.sketch(0)
    assert stored.status == "done" and sketch.status == "ok" and sketch.attempts == 2
    assert sketch.qa and sketch.qa["converted"] == "line-art" and sketch.qa["passed"]
    assert "no shading" in gemini.requests[-1].prompt
