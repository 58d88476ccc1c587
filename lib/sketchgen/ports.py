"""The ports: every outside system sits behind one of these small protocols.

Adapters translate their SDK's errors into :mod:`sketchgen.errors` at this edge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from sketchgen.schemas import ReferenceImage, Variation

__all__ = ["ImageModel", "ImageRequest", "ImageResponse", "ReferencePart"]


@dataclass(frozen=True, slots=True)
class ReferencePart:
    """A reference image sent to the model as an image part."""

    reference: ReferenceImage
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class ImageRequest:
    """One sketch to draw. ``prompt`` is complete; the rest lets a local model draw without parsing it."""

    index: int
    prompt: str
    brief: str
    variation: Variation
    model: str
    aspect_ratio: str = "1:1"
    image_size: str = "1K"
    seed: int = 0
    references: tuple[ReferencePart, ...] = ()
    input_image: bytes | None = field(default=None, repr=False)  # refinement: sketch to redraw
    instruction: str | None = None  # refinement: what to change


@dataclass(frozen=True, slots=True)
class ImageResponse:
    data: bytes = field(repr=False)
    mime_type: str
    model_used: str
    finish_reason: str | None = None
    text: str | None = None


@runtime_checkable
class ImageModel(Protocol):
    """An image model. Raises :class:`sketchgen.errors.ModelError` subclasses, nothing else."""

    @property
    def name(self) -> str: ...

    def max_reference_images(self, model: str) -> int: ...

    def generate_image(self, request: ImageRequest) -> ImageResponse: ...

    async def agenerate_image(self, request: ImageRequest) -> ImageResponse: ...
