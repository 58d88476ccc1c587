"""The style guard: what leaves the finisher meets the visual rules, or does not leave.

Models ignore "rough black-and-white sketch" often enough (a shaded render, a photograph, a
white-on-black silhouette, texture) that finishing alone cannot be trusted to make a sketch.
The guard measures the finished image; an image that breaks the rules is redrawn as line art
of its main shapes and measured again. What still breaks them raises :class:`OffStyleError`,
which the pipeline answers with one stricter request to the model (the same retry site as a
missing image) and otherwise records as a failed sketch. A sketch is never delivered ``ok``
with ``qa.passed`` false.
"""

from __future__ import annotations

from sketchgen.errors import OffStyleError
from sketchgen.finish._finisher import SketchQA, _check, _encode, _finish, _open, measure
from sketchgen.finish._lineart import line_art
from sketchgen.finish._rules import RULES, VisualRules

__all__ = ["guard_sketch"]


def guard_sketch(
    data: bytes,
    image_size: str = "1K",
    aspect_ratio: str = "1:1",
    rules: VisualRules = RULES,
) -> tuple[bytes, SketchQA]:
    """The deliverable PNG and its figures, or :class:`OffStyleError` with the figures.

    An image that passes as finished is returned exactly as ``finish_sketch`` makes it.
    """
    width, height = _check(image_size, aspect_ratio)
    image = _open(data)
    finished = _finish(image.convert("L"), width, height)
    before = measure(finished, rules)
    if before.passed:
        return _encode(finished), before
    # Colour edges count as shapes (an orange ball on a teal ground of equal brightness).
    source = image.convert("RGB" if image.mode not in {"L", "1", "I", "F"} else "L")
    art = line_art(source, width, height, rules)
    after = measure(art.drawing, rules)
    figures = before.model_dump(exclude_none=True)
    judged = {"structure": round(art.structure, 3), "coherence": round(art.coherence, 3)}
    if art.structure < rules.min_structure:
        why = "mostly texture"
    elif art.coherence < rules.min_coherence:
        why = "scattered dashes, no coherent shapes"
    elif not after.passed:
        why = f"as line art: {after.figures()}"
    else:
        qa = after.model_copy(update={"converted": "line-art", "before": figures, **judged})
        return _encode(art.drawing), qa
    raise OffStyleError(
        f"the image breaks the visual rules ({before.figures()}) and cannot be redrawn "
        f"as line art ({why}; structure {art.structure:.0%}, coherence {art.coherence:.0%})",
        qa={**figures, "converted": "refused", **judged,
            "after": after.model_dump(exclude_none=True)},
    )  # fmt: skip
