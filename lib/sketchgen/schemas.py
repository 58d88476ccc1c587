"""Payload models shared by every layer. Our own models are frozen and forbid extra fields."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from sketchgen.text import clean_text

__all__ = [
    "ASPECT_RATIOS",
    "EXAGGERATIONS",
    "IMAGE_SIZES",
    "LAYOUTS",
    "MAX_BRIEF_CHARS",
    "MAX_INSTRUCTION_CHARS",
    "MAX_REFINE_IMAGES",
    "Brief",
    "Exaggeration",
    "ImageSize",
    "Instruction",
    "Layout",
    "PromptSpec",
    "ReferenceImage",
    "RetrievalResult",
    "ScoredReference",
    "Style",
    "Variation",
    "clean_text",
    "pixel_size",
]

# The limits on user text, for every surface (library, CLI, HTTP, the web page's maxlength):
# 2000 is the public API's documented limit.
MAX_BRIEF_CHARS = 2000
MAX_INSTRUCTION_CHARS = 2000
MAX_REFINE_IMAGES = 4


def _checked(field: str, max_chars: int) -> AfterValidator:
    # Raises InputError itself (pydantic passes it through): the same error, with the same
    # message, whether a request model, the CLI or the prompt compiler meets the text first.
    # The cleaned text is what is kept (sketchgen.text: nothing raw is stored).
    def check(value: str) -> str:
        return clean_text(value, field=field, max_chars=max_chars)

    return AfterValidator(check)


Brief = Annotated[str, _checked("brief", MAX_BRIEF_CHARS)]
Instruction = Annotated[str, _checked("instruction", MAX_INSTRUCTION_CHARS)]

ImageSize = Literal["1K", "2K", "4K"]
IMAGE_SIZES: dict[str, int] = {"1K": 1024, "2K": 2048, "4K": 4096}
# Gemini's image aspect ratios, in the order the API documents them.
ASPECT_RATIOS: tuple[str, ...] = (
    "1:1",
    "2:3",
    "3:2",
    "3:4",
    "4:3",
    "4:5",
    "5:4",
    "9:16",
    "16:9",
    "21:9",
)

Layout = Literal[
    "centered_full_figure",
    "three_quarter_view",
    "close_up",
    "dynamic_diagonal_action",
    "off_center_negative_space",
    "silhouette_thumbnail",
]
LAYOUTS: tuple[Layout, ...] = (
    "centered_full_figure",
    "three_quarter_view",
    "close_up",
    "dynamic_diagonal_action",
    "off_center_negative_space",
    "silhouette_thumbnail",
)
Exaggeration = Literal["subtle", "moderate", "extreme"]
EXAGGERATIONS: tuple[Exaggeration, ...] = ("subtle", "moderate", "extreme")


def pixel_size(image_size: str, aspect_ratio: str) -> tuple[int, int]:
    """(width, height) in pixels: the long side is the size's, the other follows the ratio."""
    long_side = IMAGE_SIZES[image_size]
    w, h = (int(part) for part in aspect_ratio.split(":"))
    if w >= h:
        return long_side, max(1, round(long_side * h / w))
    return max(1, round(long_side * w / h)), long_side


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Variation(_Frozen):
    """One sketch's place in the job's variation plan."""

    index: int = Field(ge=0)
    layout: Layout
    exaggeration: Exaggeration


class ReferenceImage(_Frozen):
    """A style reference image on disk, identified by the SHA-256 of its bytes."""

    path: str
    sha256: str
    tags: tuple[str, ...] = ()
    mime_type: str = "image/png"
    description: str = ""


class Style(_Frozen):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    name: str
    description: str = ""
    visual_rules: tuple[str, ...] = ()
    references: tuple[ReferenceImage, ...] = ()
    do_not_use: tuple[str, ...] = ()  # reference file names or sha256 digests
    negative_rules: tuple[str, ...] = ()  # a user style's own "never" rules (issue 16)


class PromptSpec(_Frozen):
    """What the prompt compiler makes of a brief in a style: the prompt every sketch shares."""

    brief: str
    style_id: str
    subject: str
    keywords: tuple[str, ...]
    base_prompt: str
    negative_rules: tuple[str, ...]

    def prompt_for(self, variation: Variation, *, allow_text: bool = False) -> str:
        """The full text prompt for one sketch of the variation plan."""
        from sketchgen.prompt.render import render_sketch_prompt

        return render_sketch_prompt(self, variation, allow_text=allow_text)


class ScoredReference(_Frozen):
    reference: ReferenceImage
    score: float = Field(ge=0.0, le=1.0)


class RetrievalResult(_Frozen):
    style_id: str
    items: tuple[ScoredReference, ...] = ()

    @property
    def references(self) -> tuple[ReferenceImage, ...]:
        return tuple(item.reference for item in self.items)

    @property
    def scores(self) -> tuple[float, ...]:
        return tuple(item.score for item in self.items)
