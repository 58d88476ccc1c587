"""The README's library examples run as written, on the offline model, in a scratch folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.DOTALL | re.MULTILINE)


def test_the_readme_has_library_examples() -> None:
    assert len(BLOCKS) >= 2
    assert any("sketchgen.make_sketches(" in block for block in BLOCKS)


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_python_block_runs(
    block: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from sketchgen.settings import get_settings

    # As on a fresh machine: no key (so the offline model), no .env, outputs under tmp_path.
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GEMINI_MODEL", "SKETCHGEN_STYLES_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SKETCHGEN_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    try:
        exec(compile(block, str(README), "exec"), {"__name__": "__readme__"})
    finally:
        get_settings.cache_clear()
    printed = capsys.readouterr().out
    assert re.search(r"\d{8}_\d{6}", printed)  # every example prints the job's timestamp
    assert list(tmp_path.rglob("metadata.json"))
    assert len(list(tmp_path.rglob("sketch_*.png"))) == 4
