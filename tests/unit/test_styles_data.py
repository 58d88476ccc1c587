import hashlib
import json
import sys
from pathlib import Path

import pytest

from sketchgen.styles import PACKAGED_STYLES_DIR, StyleRegistry


def test_every_packaged_style_is_consistent() -> None:
    folders = sorted(p.parent for p in PACKAGED_STYLES_DIR.glob("*/style.json"))
    assert len(folders) >= 2
    for folder in folders:
        doc = json.loads((folder / "style.json").read_text())
        assert doc["id"] == folder.name
        files = [r["file"] for r in doc["references"]]
        assert all((folder / f).is_file() for f in files)
        assert doc["do_not_use"] and set(doc["do_not_use"]) <= set(files)


def test_the_duplicate_reference_is_kept_once() -> None:
    folder = PACKAGED_STYLES_DIR / "loose-ink-mascot" / "references"
    a, b = (folder / "golf-mascot.png").read_bytes(), (folder / "golf-mascot-copy.png").read_bytes()
    assert hashlib.sha256(a).digest() == hashlib.sha256(b).digest()
    style = StyleRegistry().get_style("loose-ink-mascot")
    names = [r.path.rsplit("/", 1)[1] for r in style.references]
    assert "golf-mascot.png" in names and "golf-mascot-copy.png" not in names


def test_the_generator_script_is_deterministic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    script = Path(__file__).resolve().parents[2] / "scripts" / "make_reference_images.py"
    spec = importlib.util.spec_from_file_location("make_refs", script)
    assert spec is not None and spec.loader is not None, script
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "make_refs", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "ROOT", tmp_path)
    module.main()
    for made in tmp_path.glob("*/references/*.png"):
        shipped = PACKAGED_STYLES_DIR / made.relative_to(tmp_path)
        assert made.read_bytes() == shipped.read_bytes(), made
