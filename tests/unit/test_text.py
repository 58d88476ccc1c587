"""The one cleaning rule for user text (sketchgen.text), on every path: the models the HTTP
routes validate with (create and PATCH), the upload form, the CLI, and job briefs."""

from __future__ import annotations

import io
import json
import logging
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from werkzeug.test import Client

from sketchgen import bootstrap
from sketchgen.bootstrap import build_api, build_service
from sketchgen.cli import main
from sketchgen.errors import InputError
from sketchgen.jobs import JobRequest, RefineRequest
from sketchgen.services import SketchService
from sketchgen.settings import Settings, get_settings
from sketchgen.styles.owned import ReferencePatch, StyleDraft, StylePatch
from sketchgen.text import MAX_TAG_CHARS, MAX_TAGS, clean_text, parse_tags
from tests.helpers.responses import json_of

ALICE = {"Authorization": "Bearer dev:alice"}
# What issue 23 found stored raw: NUL, a bidi override, a terminal escape, a BOM, zero-width.
HOSTILE = "Mas\x00cot \u202eevil\u202c \x1b[31mred\x1b[0m\ufeff zero\u200bwidth\ttab\nline"
CLEANED = "Mascot evil [31mred[0m zerowidth tab line"


def test_the_rule_removes_control_and_format_characters_and_collapses_space() -> None:
    assert clean_text(HOSTILE, field="name", max_chars=200) == CLEANED
    # NFC: a decomposed é is one character, counted and stored as one.
    assert clean_text("e\u0301", field="name", max_chars=1) == "\u00e9"
    # Kept: the joiners emoji sequences and Persian/Indic scripts need.
    family = "\U0001f469\u200d\U0001f3a8 studio"
    assert clean_text(family, field="name", max_chars=20) == family
    # Lone surrogates (JSON's "\ud800") would fail later as UTF-8: removed here.
    assert clean_text("a\ud800b", field="name", max_chars=5) == "ab"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "name must not be empty"),
        ("\x00\u202e\u200b ", "name must not be empty"),
        ("x" * 81, "name must be at most 80 characters"),
        ("x" * 1_000_000, "name must be at most 80 characters"),
        (42, "name must be a string"),
    ],
)
def test_the_rule_refuses_what_is_empty_or_too_long(value: object, message: str) -> None:
    with pytest.raises(InputError) as caught:
        clean_text(value, field="name", max_chars=80)
    assert str(caught.value) == message and caught.value.field == "name"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=()), max_size=200))
def test_whatever_comes_in_what_is_kept_is_clean_bounded_and_stable(value: str) -> None:
    try:
        cleaned = clean_text(value, field="name", max_chars=80, allow_empty=True)
    except InputError as error:
        assert error.field == "name" and "at most 80" in str(error)
        return
    assert len(cleaned) <= 80 and cleaned == cleaned.strip()
    kept_controls = [ch for ch in cleaned if unicodedata.category(ch)[0] == "C"]
    assert set(kept_controls) <= {"\u200c", "\u200d"}, ascii(cleaned)
    assert "  " not in cleaned and "\n" not in cleaned
    assert clean_text(cleaned, field="name", max_chars=80, allow_empty=True) == cleaned


def test_one_tag_parser_for_strings_and_lists() -> None:
    expected = ("golf", "mascot swing")
    assert parse_tags("Golf, \x1b mascot\u202e  swing,golf,,") == expected
    assert parse_tags(["Golf", "mascot\tswing", "GOLF", ""]) == expected
    for raw in ("x" * 15_000, ["x" * (MAX_TAG_CHARS + 1)]):
        with pytest.raises(InputError) as caught:
            parse_tags(raw)
        assert caught.value.field == "tags"
    with pytest.raises(InputError, match=f"at most {MAX_TAGS} tags"):
        parse_tags([f"t{i}" for i in range(MAX_TAGS + 1)])
    with pytest.raises(InputError, match="tags"):
        parse_tags(["ok", 3])


def test_models_store_the_cleaned_text() -> None:
    draft = StyleDraft(name=HOSTILE, description=HOSTILE, rules=[HOSTILE, "\x00"])
    assert draft.name == CLEANED and draft.description == CLEANED and draft.rules == (CLEANED,)
    patch = StylePatch(name=" a\u202eb ", negative_rules=["never \x1b[2J clear"])
    assert patch.name == "ab" and patch.negative_rules == ("never [2J clear",)
    reference = ReferencePatch(tags=["Golf\x00", "GOLF"], description="\u202eok")
    assert reference.tags == ("golf",) and reference.description == "ok"
    assert JobRequest(brief=f"golf {HOSTILE}", style_id="loose-ink-mascot").brief == (
        f"golf {CLEANED}"
    )
    assert RefineRequest(instruction="bigger\x00 \u202ehat").instruction == "bigger hat"


def test_patch_takes_tags_through_the_parser() -> None:
    """Issue 23: PATCH skipped the tag parser and stored a 15,000-character tag."""
    with pytest.raises(InputError) as caught:
        ReferencePatch(tags=["x" * 15_000])
    assert caught.value.field == "tags"
    with pytest.raises(InputError):
        ReferencePatch(tags="a," * 100)


# -- the HTTP paths ---------------------------------------------------------------------------


@pytest.fixture
def service(tmp_path: Path) -> SketchService:
    settings = Settings(
        job_store="memory://", blob_url=f"file://{tmp_path / 'blobs'}", offline=True, auth="dev"
    )
    return build_service(settings)


@pytest.fixture
def client(service: SketchService) -> Client:
    return Client(build_api(lambda: service, Settings(auth="dev", offline=True)))


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("L", (64, 64), 200).save(out, format="PNG")
    return out.getvalue()


def test_every_http_path_stores_cleaned_text(client: Client) -> None:
    created = client.post(
        "/v1/styles", json={"name": HOSTILE, "description": HOSTILE}, headers=ALICE
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    style_id = json_of(created)["style_id"]
    assert json_of(created)["name"] == CLEANED and json_of(created)["description"] == CLEANED
    patched = client.patch(f"/v1/styles/{style_id}", json={"name": "\u202eok\x00"}, headers=ALICE)
    assert patched.status_code == 200 and json_of(patched)["name"] == "ok"
    form = {
        "image": (io.BytesIO(_png()), "a.png", "image/png"),
        "tags": "Go\x1blf, golf",
        "description": HOSTILE,
    }
    added = client.post(f"/v1/styles/{style_id}/references", data=form, headers=ALICE)
    assert added.status_code == 201, added.get_data(as_text=True)
    assert json_of(added)["tags"] == ["golf"] and json_of(added)["description"] == CLEANED
    sha = json_of(added)["sha256"]
    url = f"/v1/styles/{style_id}/references/{sha}"
    long_tag = client.patch(url, json={"tags": ["x" * 15_000]}, headers=ALICE)
    assert long_tag.status_code == 422 and json_of(long_tag)["error"]["field"] == "tags"
    tags = client.patch(url, json={"tags": ["Ink\u202e", "INK", "\x00"]}, headers=ALICE)
    assert tags.status_code == 200 and json_of(tags)["tags"] == ["ink"]
    shown = client.get(f"/v1/styles/{style_id}", headers=ALICE).json
    assert "\\u0000" not in json.dumps(shown) and "\\u202e" not in json.dumps(shown)


# -- the CLI ----------------------------------------------------------------------------------


@pytest.fixture
def _fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "SKETCHGEN_JOB_STORE", "SKETCHGEN_BLOB_URL"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
    root = logging.getLogger("sketchgen")  # the CLI's service logged onto capsys's stderr
    for handler in [h for h in root.handlers if getattr(h, "_sketchgen", False)]:
        root.removeHandler(handler)
    root.propagate = True


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    code = main(list(argv))
    out = capsys.readouterr().out.strip()
    return code, json.loads(out) if out else None


@pytest.mark.usefixtures("_fresh")
def test_the_cli_stores_cleaned_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = ["--data-dir", str(tmp_path), "--owner", "alice", "--offline"]
    code, created = _cli(capsys, "styles", "create", HOSTILE, "--description", HOSTILE, *data)
    assert code == 0
    image = tmp_path / "ref.png"
    image.write_bytes(_png())
    code, _ = _cli(
        capsys,
        "styles",
        "add-reference",
        created["style_id"],
        str(image),
        "--tags",
        "Go\x1blf,golf",
        "--description",
        "\u202eink",
        *data,
    )
    assert code == 0
    # The service `sketchgen serve` would build on the same folder.
    catalog = bootstrap.Instance(bootstrap.local_settings(tmp_path, offline=True)).service().catalog
    owned = catalog.owned("alice", created["style_id"])
    assert owned.doc.name == CLEANED and owned.doc.description == CLEANED
    assert [(r.tags, r.description) for r in owned.references] == [(("golf",), "ink")]
    code = main(["styles", "add-reference", created["style_id"], str(image), "--tags",
                 "x" * 15_000, *data])  # fmt: skip
    assert code == 2
    assert "tags" in capsys.readouterr().err
