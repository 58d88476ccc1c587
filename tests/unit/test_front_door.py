"""``import sketchgen``: the one-liner, the seed-shaped names, and a cheap import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import sketchgen
from tests.helpers.fakes import FakeImageModel


def test_every_public_name_resolves() -> None:
    for name in sketchgen.__all__:
        assert getattr(sketchgen, name) is not None, name
    assert issubclass(sketchgen.ConfigError, sketchgen.SketchgenError)


def test_the_package_and_the_one_liner_have_their_own_names() -> None:
    import types

    import sketchgen.generate.config  # as Python does: binds the subpackage to its name

    assert isinstance(sketchgen.generate, types.ModuleType)  # a plain package, no swap
    assert type(sketchgen.generate) is types.ModuleType
    assert callable(sketchgen.make_sketches) and sketchgen.make_sketches.__name__ == "make_sketches"
    # One class per name, whichever door it is imported through.
    assert sketchgen.GenerationConfig is sketchgen.generate.GenerationConfig
    assert sketchgen.ImageGenerator is sketchgen.generate.ImageGenerator
    from sketchgen.styles import StyleRegistry

    assert sketchgen.StyleRegistry is StyleRegistry


def test_one_liner_runs_a_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sketchgen.settings import get_settings

    monkeypatch.setenv("SKETCHGEN_OFFLINE", "1")
    get_settings.cache_clear()
    try:
        result = sketchgen.make_sketches(
            "playful golf mascot", n=2, seed=5, resolution=(1024, 576), output_dir=tmp_path
        )
    finally:
        get_settings.cache_clear()
    assert result.ok and len(result.images) == 2
    assert result.output_dir.parent == tmp_path
    meta = json.loads(result.metadata_path.read_text())
    assert meta["config"]["resolution"] == [1024, 576]
    assert meta["style_id"] == "loose-ink-mascot" and meta["model"]["adapter"] == "offline"


def test_one_liner_refuses_bad_input_before_any_model_call(tmp_path: Path) -> None:
    with pytest.raises(sketchgen.ConfigError, match="resolution"):
        sketchgen.make_sketches("golf mascot", resolution=(1000, 1000), output_dir=tmp_path)
    with pytest.raises(sketchgen.UnknownStyleError):
        sketchgen.make_sketches("golf mascot", style="no-such-style", output_dir=tmp_path)
    assert not list(tmp_path.iterdir())


def test_import_loads_nothing_heavy() -> None:
    code = (
        "import sys, sketchgen; print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'pydantic', 'PIL', 'numpy', 'httpx'} or m.startswith('google.genai')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_fake_model_still_plugs_into_the_seed_shaped_generator(tmp_path: Path) -> None:
    style = sketchgen.StyleRegistry().get_style("loose-ink-mascot")
    spec = sketchgen.PromptCompiler().compile("golf mascot", style)
    retrieval = sketchgen.ImageRetriever().retrieve(spec, style, top_k=2)
    config = sketchgen.GenerationConfig(num_images=1, output_dir=tmp_path)
    result = sketchgen.ImageGenerator(FakeImageModel()).generate(
        prompt_spec=spec, retrieval_result=retrieval, style=style, config=config
    )
    assert result.ok


def test_the_generator_takes_the_configured_model_wherever_it_is_imported_from(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sketchgen.generate import ImageGenerator as SeedImport
    from sketchgen.settings import get_settings

    monkeypatch.setenv("SKETCHGEN_OFFLINE", "1")
    monkeypatch.setenv("SKETCHGEN_MAX_ATTEMPTS", "2")
    get_settings.cache_clear()
    try:
        for generator in (sketchgen.ImageGenerator(), SeedImport()):
            assert generator.model.name == "offline" and generator.retry.max_attempts == 2
    finally:
        get_settings.cache_clear()


def test_the_registry_reads_the_styles_dir_wherever_it_is_imported_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sketchgen.settings import get_settings
    from sketchgen.styles import PACKAGED_STYLES_DIR
    from sketchgen.styles import StyleRegistry as SeedImport

    monkeypatch.setenv("SKETCHGEN_STYLES_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        assert sketchgen.StyleRegistry().root == SeedImport().root == tmp_path
    finally:
        get_settings.cache_clear()
    monkeypatch.delenv("SKETCHGEN_STYLES_DIR")
    get_settings.cache_clear()
    try:
        assert SeedImport().root == PACKAGED_STYLES_DIR
    finally:
        get_settings.cache_clear()
