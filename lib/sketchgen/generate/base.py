"""The image-model port with its defaults: what every model adapter derives from.

A ``Protocol`` like every port (:mod:`sketchgen.ports`): anything with these methods is an
image model to mypy; adapters that derive from it explicitly inherit the defaults below
(``agenerate_image`` on a thread, no batch API) and must define the abstract ones.
"""

from __future__ import annotations

import asyncio
from abc import abstractmethod
from collections.abc import Sequence
from typing import Protocol

from sketchgen.errors import ConfigError
from sketchgen.ports import BatchStatus, ImageRequest, ImageResponse

__all__ = ["ImageModelAdapter"]


class ImageModelAdapter(Protocol):
    """Draws one sketch per call.

    Implementations raise only :class:`sketchgen.errors.ModelError` subclasses and never
    retry: retrying lives in :mod:`sketchgen.generate.retry`, in one place for every model.
    """

    @property
    @abstractmethod
    def name(self) -> str:
        """Short adapter name recorded in metadata (``nano-banana``, ``offline``)."""

    def prepare(self) -> None:
        """Load what the first call needs (SDK, client), so that it is not paid inside a
        quota slot: calls spaced as slots would otherwise arrive bunched after a cold start."""
        return  # optional: most adapters have nothing to load

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
