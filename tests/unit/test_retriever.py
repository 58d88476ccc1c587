from pathlib import Path

import pytest

from sketchgen.errors import InputError
from sketchgen.prompt import PromptCompiler
from sketchgen.references import ImageRetriever
from sketchgen.references.embedding import HashingTextEmbedding
from sketchgen.schemas import Style


def test_do_not_use_is_removed_before_top_k(style: Style) -> None:
    spec = PromptCompiler().compile("golf mascot shaded", style)
    # Unfiltered, the banned reference (tagged golf, mascot, shaded) would rank first.
    result = ImageRetriever().retrieve(spec, style, top_k=1)
    assert len(result.items) == 1
    assert "shaded" not in result.items[0].reference.tags
    assert "golf" in result.items[0].reference.tags
    everything = ImageRetriever().retrieve(spec, style, top_k=10)
    assert len(everything.items) == 3
    assert all(r.sha256 not in style.do_not_use for r in everything.references)


def test_scores_are_in_unit_range_and_sorted(style: Style) -> None:
    spec = PromptCompiler().compile("cute coffee cup character", style)
    result = ImageRetriever().retrieve(spec, style, top_k=3)
    assert all(0.0 <= s <= 1.0 for s in result.scores)
    assert list(result.scores) == sorted(result.scores, reverse=True)
    assert "coffee" in result.items[0].reference.tags


def test_embedding_is_pluggable(style: Style) -> None:
    class PrefersFox:
        def embed(self, texts: list[str]) -> list[list[float]]:
            return [[1.0, 0.0] if "fox" in t else [0.0, 1.0] for t in texts[:1]] + [
                [1.0, 0.0] if "fox" in t else [0.0, 1.0] for t in texts[1:]
            ]

    spec = PromptCompiler().compile("fox", style)
    result = ImageRetriever(PrefersFox()).retrieve(spec, style, top_k=1)
    assert "fox" in result.items[0].reference.tags
    assert result.items[0].score == 1.0


def test_style_mismatch_is_an_input_error(style: Style) -> None:
    spec = PromptCompiler().compile("golf", style)
    other = style.model_copy(update={"id": "other"})
    with pytest.raises(InputError):
        ImageRetriever().retrieve(spec, other)


def test_hashing_embedding_relates_word_forms() -> None:
    from sketchgen.references.embedding import cosine

    a, b, c = HashingTextEmbedding().embed(["golfer", "golf club", "coffee"])
    assert cosine(a, b) > cosine(a, c)


def test_retrieval_is_deterministic(style: Style, tmp_path: Path) -> None:
    spec = PromptCompiler().compile("mascot", style)
    assert ImageRetriever().retrieve(spec, style) == ImageRetriever().retrieve(spec, style)
