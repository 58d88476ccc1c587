"""One sketch's prompt: the job's shared prompt plus its variation's layout and exaggeration.

Imports nothing of sketchgen, not even for types (it reads the spec and the variation
through the two small protocols below), so ``PromptSpec.prompt_for`` in
:mod:`sketchgen.schemas` can call it with no import cycle between the two.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class _Spec(Protocol):
    @property
    def base_prompt(self) -> str: ...

    @property
    def negative_rules(self) -> Sequence[str]: ...


class _Variation(Protocol):
    @property
    def layout(self) -> str: ...

    @property
    def exaggeration(self) -> str: ...


__all__ = ["EXAGGERATION_PROMPTS", "LAYOUT_PROMPTS", "render_sketch_prompt"]

NO_TEXT_RULE = "no text, letters, numbers, logos or watermarks"
TEXT_ALLOWED_RULE = "lettering is allowed where the brief asks for it; keep it hand-drawn and rough"

LAYOUT_PROMPTS: dict[str, str] = {
    "centered_full_figure": "Composition: the whole subject, centred, full figure in frame.",
    "three_quarter_view": "Composition: three-quarter view, subject turned slightly to one side.",
    "close_up": "Composition: close-up on the head and shoulders, filling the frame.",
    "dynamic_diagonal_action": (
        "Composition: dynamic action pose along a strong diagonal, with motion lines."
    ),
    "off_center_negative_space": (
        "Composition: subject placed off-centre on a third, generous empty white space."
    ),
    "silhouette_thumbnail": (
        "Composition: small solid black silhouette thumbnail; the shape must read on its own."
    ),
}
EXAGGERATION_PROMPTS: dict[str, str] = {
    "subtle": "Proportions: subtle stylisation, close to natural.",
    "moderate": "Proportions: moderately exaggerated, cartoon-like.",
    "extreme": "Proportions: extreme exaggeration: oversized head, squash and stretch.",
}


def render_sketch_prompt(spec: _Spec, variation: _Variation, *, allow_text: bool) -> str:
    negatives = (*spec.negative_rules, TEXT_ALLOWED_RULE if allow_text else NO_TEXT_RULE)
    return "\n".join(
        (
            spec.base_prompt,
            LAYOUT_PROMPTS[variation.layout],
            EXAGGERATION_PROMPTS[variation.exaggeration],
            "Avoid: " + "; ".join(negatives) + ".",
            "Use the attached reference images for line quality and proportions only.",
        )
    )
