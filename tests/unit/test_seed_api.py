"""The original design's documented usage, run verbatim: its module layout
(``sketchgen.generate``, ``sketchgen.styles``, …), its example style ``vintage-mascot``, and
a compiled brief alone. On the offline model (no key), in a scratch folder."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

SEED_USAGE = textwrap.dedent(
    """
    from sketchgen.generate import GenerationConfig, ImageGenerator
    from sketchgen.prompt import PromptCompiler
    from sketchgen.references import ImageRetriever
    from sketchgen.styles import StyleRegistry

    registry = StyleRegistry()
    style = registry.get_style("vintage-mascot")
    prompt_spec = PromptCompiler().compile("playful golf mascot", style)
    retrieval_result = ImageRetriever().retrieve(prompt_spec, style, top_k=3)
    generator = ImageGenerator()
    config = GenerationConfig(num_images=4, resolution=(1024, 1024), output_dir="out")
    result = generator.generate(
        prompt_spec=prompt_spec,
        retrieval_result=retrieval_result,
        style=style,
        config=config,
    )
    """
)


@pytest.fixture
def fresh_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """No key (so the offline model), no styles folder, outputs under ``tmp_path``."""
    from sketchgen.settings import get_settings

    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GEMINI_MODEL", "SKETCHGEN_STYLES_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SKETCHGEN_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_the_seed_usage_runs_verbatim_with_its_vintage_mascot_style(fresh_machine: Path) -> None:
    scope: dict[str, object] = {}
    exec(compile(SEED_USAGE, "seed-usage", "exec"), scope)
    result = scope["result"]
    assert getattr(result, "errors") == {}  # noqa: B009 - exec's scope is untyped
    images = sorted((fresh_machine / "out").rglob("sketch_*.png"))
    assert len(images) == 4
    [metadata] = (fresh_machine / "out").rglob("metadata.json")
    recorded = json.loads(metadata.read_text())
    assert recorded["style_id"] == "vintage-mascot"
    # Its references were retrieved and sent: the style has real ones, filtered by the brief.
    assert recorded["references"] and all(
        "vintage-mascot" in str(ref) or "references/" in str(ref) for ref in recorded["references"]
    )


def test_the_vintage_mascot_style_is_a_real_style_with_references() -> None:
    from sketchgen.styles import PACKAGED_STYLES_DIR, StyleRegistry

    style = StyleRegistry(PACKAGED_STYLES_DIR).get_style("vintage-mascot")
    assert len(style.visual_rules) >= 3
    assert len(style.references) >= 5 and all(Path(ref.path).is_file() for ref in style.references)
    assert style.do_not_use  # an off-brand study the retriever must never send


def test_a_compiled_brief_alone_is_a_whole_job(fresh_machine: Path) -> None:
    from sketchgen.generate import ImageGenerator
    from sketchgen.prompt import PromptCompiler
    from sketchgen.styles import StyleRegistry

    prompt_spec = PromptCompiler().compile(
        "playful golf mascot", StyleRegistry().get_style("vintage-mascot")
    )
    result = ImageGenerator().generate(prompt_spec)
    assert result.ok and len(result.images) == 4  # GenerationConfig()'s four
    recorded = json.loads(result.metadata_path.read_text())
    assert recorded["style_id"] == "vintage-mascot" and recorded["references"] == []
    assert (fresh_machine / result.output_dir).parent == fresh_machine / "generated_outputs"


def test_a_retrieval_for_another_style_is_still_refused(fresh_machine: Path) -> None:
    from sketchgen.errors import InputError
    from sketchgen.generate import ImageGenerator
    from sketchgen.prompt import PromptCompiler
    from sketchgen.schemas import RetrievalResult
    from sketchgen.styles import StyleRegistry

    prompt_spec = PromptCompiler().compile(
        "playful golf mascot", StyleRegistry().get_style("vintage-mascot")
    )
    with pytest.raises(InputError, match="same style"):
        ImageGenerator().generate(prompt_spec, RetrievalResult(style_id="loose-ink-mascot"))
    assert not (fresh_machine / "generated_outputs").exists()
