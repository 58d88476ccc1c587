"""The abstract image-model adapter every model implements (the ``ImageModel`` port)."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Sequence

from sketchgen.errors import ConfigError
from sketchgen.ports import BatchStatus, ImageRequest, ImageResponse

__all__ = ["ImageModelAdapter"]


class ImageModelAdapter(ABC):
    """Draws one sketch per call.

    Implementations raise only :class:`sketchgen.errors.ModelError` subclasses and never
    retry: retrying lives in :mod:`sketchgen.generate.retry`, in one place for every model.
    """

    @property
    @abstractmethod
    def name(self) -> str:
        """Short adapter name recorded in metadata (``nano-banana``, ``offline``)."""

    def prepare(self) -> None:  # noqa: B027 - optional: most adapters have nothing to load
        """Load what the first call needs (SDK, client), so that it is not paid inside a
        quota slot: calls spaced as slots would otherwise arrive bunched after a cold start."""

    @abstractmethod
    def generate_image(self, request: ImageRequest) -> ImageResponse:
        """Draw one sketch, blocking."""

    async def agenerate_image(self, request: ImageRequest) -> ImageResponse:
        """Draw one sketch without blocking the event loop (default: on a worker thread)."""
        return await asyncio.to_thread(self.generate_image, request)

    # -- batch (half price, results within a day); optional ------------------------------

    supports_batch: bool = False

    def submit_batch(self, requests: Sequence[ImageRequest], *, display_name: str) -> str:
        """Queue many sketches (one model) as one model-side batch; returns its name."""
        raise ConfigError(f"the {self.name} model has no batch API", field="batch")

    def batch_status(self, name: str) -> BatchStatus:
        """Poll a batch made by :meth:`submit_batch`."""
        raise ConfigError(f"the {self.name} model has no batch API", field="batch")
