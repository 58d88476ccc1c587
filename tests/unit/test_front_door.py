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


def test_generate_is_callable_and_still_the_package() -> None:
    import sketchgen.generate.config  # binds the subpackage to sketchgen.generate, as Python does

    assert callable(sketchgen.generate)
    # The front door's classes are the library's with the configured defaults.
    assert issubclass(sketchgen.GenerationConfig, sketchgen.generate.GenerationConfig)
    from sketchgen import generate

    assert generate is sketchgen.generate


def test_one_liner_runs_a_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sketchgen.settings import get_settings

    monkeypatch.setenv("SKETCHGEN_OFFLINE", "1")
    get_settings.cache_clear()
    try:
        result = sketchgen.generate(
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
        sketchgen.generate("golf mascot", resolution=(1000, 1000), output_dir=tmp_path)
    with pytest.raises(sketchgen.UnknownStyleError):
        sketchgen.generate("golf mascot", style="no-such-style", output_dir=tmp_path)
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


def test_the_library_generator_takes_its_model_the_front_door_fills_it_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sketchgen.generate import ImageGenerator as LibraryGenerator
    from sketchgen.settings import get_settings

    with pytest.raises(sketchgen.ConfigError, match=r"sketchgen\.ImageGenerator\(\)"):
        LibraryGenerator()
    monkeypatch.setenv("SKETCHGEN_OFFLINE", "1")
    monkeypatch.setenv("SKETCHGEN_MAX_ATTEMPTS", "2")
    get_settings.cache_clear()
    try:
        generator = sketchgen.ImageGenerator()
    finally:
        get_settings.cache_clear()
    assert isinstance(generator, LibraryGenerator)
    assert generator.model.name == "offline" and generator.retry.max_attempts == 2


def test_the_front_door_registry_reads_the_styles_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sketchgen.settings import get_settings
    from sketchgen.styles import PACKAGED_STYLES_DIR
    from sketchgen.styles import StyleRegistry as LibraryRegistry

    monkeypatch.setenv("SKETCHGEN_STYLES_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        assert sketchgen.StyleRegistry().root == tmp_path
        assert LibraryRegistry().root == PACKAGED_STYLES_DIR
    finally:
        get_settings.cache_clear()
