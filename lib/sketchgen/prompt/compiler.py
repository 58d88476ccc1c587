"""Compile a brief and a style into the prompt every sketch of a job shares."""

from __future__ import annotations

import re

from sketchgen.prompt.render import render_sketch_prompt
from sketchgen.schemas import MAX_BRIEF_CHARS, PromptSpec, Style, clean_text

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
            # A user style's own "never" rules come after the house ones.
            negative_rules=(*NEGATIVE_RULES, *style.negative_rules),
        )
