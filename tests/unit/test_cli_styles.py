"""``sketchgen styles create | add-reference | rm`` on the local service's stores."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from sketchgen import bootstrap
from sketchgen.cli import main
from sketchgen.settings import get_settings


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "SKETCHGEN_JOB_STORE", "SKETCHGEN_BLOB_URL"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
    # The CLI's Instance.service() configured logging onto capsys's stderr, closed after the test.
    root = logging.getLogger("sketchgen")
    for handler in [h for h in root.handlers if getattr(h, "_sketchgen", False)]:
        root.removeHandler(handler)
    root.propagate = True


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "refs"
    folder.mkdir()
    for i, name in enumerate(["golf-mascot.png", "coffee_cup.jpg", "robot.webp"]):
        image = Image.new("RGB", (120, 90), "white")
        image.putpixel((i, i), (0, 0, 0))
        image.save(folder / name)
    (folder / "notes.txt").write_text("not an image, not looked at")
    sidecar = {"robot.webp": {"tags": ["robot", "action"], "description": "robot mid-jump"}}
    (folder / "references.json").write_text(json.dumps(sidecar))
    return folder


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_create_from_a_folder_then_add_and_remove(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ["--owner", "alice", "--data-dir", str(tmp_path / "data"), "--offline"]
    code, out, _ = _run(
        capsys, "styles", "create", "Team ink", "--from-folder", str(_folder(tmp_path)),
        "--rule", "thick ink", *data,
    )  # fmt: skip
    assert code == 0, out
    created = json.loads(out)
    style_id = created["style_id"]
    tags = {r["file"]: r["tags"] for r in created["references"]}
    assert tags == {
        "coffee_cup.jpg": ["coffee", "cup"],
        "golf-mascot.png": ["golf", "mascot"],
        "robot.webp": ["robot", "action"],
    }

    # `sketchgen serve` on the same data dir sees the style, for its owner only.
    instance = bootstrap.Instance(bootstrap.local_settings(tmp_path / "data", offline=True))
    catalog = instance.service().catalog
    owned = catalog.owned("alice", style_id)
    assert owned.doc.rules == ("thick ink",) and len(owned.references) == 3
    robot = next(r for r in owned.references if r.tags == ("robot", "action"))
    assert robot.description == "robot mid-jump"

    extra = tmp_path / "extra.png"
    Image.new("L", (50, 50), 128).save(extra)
    code, out, _ = _run(
        capsys, "styles", "add-reference", style_id, str(extra), "--tags", "grey", *data
    )
    assert code == 0 and json.loads(out)["created"] is True
    sha = json.loads(out)["sha256"]
    assert _run(capsys, "styles", "rm", style_id, "--reference", sha, *data)[0] == 0
    assert _run(capsys, "styles", "rm", style_id, *data)[0] == 0
    code, _, err = _run(capsys, "styles", "rm", style_id, *data)
    assert code == 2 and "no style" in err


def test_a_bad_image_in_the_folder_is_skipped_and_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _folder(tmp_path)
    (folder / "fake.png").write_text("<svg xmlns='http://www.w3.org/2000/svg'></svg>")
    code, out, err = _run(
        capsys, "styles", "create", "T", "--from-folder", str(folder),
        "--data-dir", str(tmp_path / "data"), "--offline",
    )  # fmt: skip
    assert code == 1 and json.loads(out)["skipped"] == 1 and len(json.loads(out)["references"]) == 3
    assert "fake.png" in err and "not a PNG, JPEG or WebP" in err


def test_another_owner_cannot_remove_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = ["--data-dir", str(tmp_path / "data"), "--offline"]
    code, out, _ = _run(capsys, "styles", "create", "Mine", "--owner", "alice", *data)
    style_id = json.loads(out)["style_id"]
    code, _, err = _run(capsys, "styles", "rm", style_id, "--owner", "bob", *data)
    assert code == 2 and "no style" in err
