"""Compile a brief and a style into the prompt every sketch of a job shares."""

from __future__ import annotations

import re

from sketchgen.schemas import MAX_BRIEF_CHARS, PromptSpec, Style, Variation, clean_text

__all__ = [
    "MAX_BRIEF_CHARS",
    "PromptCompiler",
    "clean_text",
    "normalize_brief",
    "render_sketch_prompt",
]

SKETCH_RULES: tuple[str, ...] = (
    "Rough concept sketch for a designer to draw over, not finished art.",
    "Black lines on a clean, pure white background; grayscale only.",
    "Rough pencil or loose ink strokes with thick, confident outlines.",
    "Minimal interior detail; big readable shapes.",
)
NEGATIVE_RULES: tuple[str, ...] = (
    "no colour",
    "no gradients",
    "no shading textures, hatching fills or paper texture",
    "no photorealism",
    "no background scenery or drop shadows",
)
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

_WORD = re.compile(r"[^\W_]+(?:['-][^\W_]+)*", re.UNICODE)
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "for",
        "with",
        "and",
        "or",
        "in",
        "on",
        "to",
        "at",
        "by",
        "from",
        "as",
        "is",
        "be",
    ]
)


def normalize_brief(brief: object) -> str:
    return clean_text(brief, field="brief", max_chars=MAX_BRIEF_CHARS)


class PromptCompiler:
    """Turns ``(brief, style)`` into a :class:`PromptSpec`. Pure and deterministic."""

    def compile(self, brief: str, style: Style) -> PromptSpec:
        text = normalize_brief(brief)
        keywords = tuple(
            dict.fromkeys(w.lower() for w in _WORD.findall(text) if w.lower() not in _STOPWORDS)
        )
        lines = [
            f"Subject: {text}.",
            f"Style: {style.name}. {style.description}".rstrip(),
            *(f"- {rule}" for rule in style.visual_rules),
            *(f"- {rule}" for rule in SKETCH_RULES),
        ]
        return PromptSpec(
            brief=text,
            style_id=style.id,
            subject=text,
            keywords=keywords,
            base_prompt="\n".join(lines),
            negative_rules=NEGATIVE_RULES,
        )


def render_sketch_prompt(spec: PromptSpec, variation: Variation, *, allow_text: bool) -> str:
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
