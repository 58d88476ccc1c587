"""Fakes (real, small implementations) used instead of mocks."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from PIL import Image, ImageDraw

from sketchgen.errors import ModelError
from sketchgen.generate.base import ImageModelAdapter
from sketchgen.ports import BlobStore, ImageRequest, ImageResponse, SketchTask

if TYPE_CHECKING:
    from sketchgen.services import SketchService


def drawing_png(width: int = 600, height: int = 400, seed: int = 0) -> bytes:
    image = Image.new("RGB", (width, height), (250, 250, 250))
    draw = ImageDraw.Draw(image)
    offset = seed % 50
    draw.ellipse((150 + offset, 80, 450 + offset, 330), outline=(20, 20, 20), width=12)
    draw.line((100, 350, 500, 60 + offset), fill=(10, 10, 10), width=10)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class FakeImageModel(ImageModelAdapter):
    """Draws a simple figure; ``failures`` maps a sketch index to the error it raises.

    With ``hold`` every call waits until the event is set (a model call in flight for as long
    as a test needs); ``entered`` counts the calls that have started.
    """

    def __init__(
        self,
        failures: dict[int, Callable[[], ModelError]] | None = None,
        delay_s: float = 0.0,
        hold: threading.Event | None = None,
    ) -> None:
        self.failures = failures or {}
        self.delay_s = delay_s
        self.hold = hold
        self.entered = threading.Semaphore(0)
        self.requests: list[ImageRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return "fake"

    def generate_image(self, request: ImageRequest) -> ImageResponse:
        with self._lock:
            self.requests.append(request)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.entered.release()
        try:
            if self.hold is not None:
                assert self.hold.wait(timeout=60), "the test never released the model call"
            if self.delay_s:
                # Not synchronisation: the model's latency is the knob tests turn (overlap,
                # concurrency caps), so a call takes this long.
                time.sleep(self.delay_s)
        finally:
            with self._lock:
                self.in_flight -= 1
        if request.index in self.failures:
            raise self.failures[request.index]()
        return ImageResponse(
            data=drawing_png(seed=request.seed),
            mime_type="image/png",
            model_used=request.model,
            finish_reason="STOP",
        )


class CollectingQueue:
    """A TaskQueue that only records what was published; the test delivers by hand."""

    def __init__(self) -> None:
        self.tasks: list[SketchTask] = []

    def publish(self, tasks: Sequence[SketchTask]) -> None:
        self.tasks.extend(tasks)


def published(service: SketchService) -> list[SketchTask]:
    """What a service built on a :class:`CollectingQueue` has published: the live list, which a
    test takes tasks from (to deliver by hand) or puts them back into (to redeliver)."""
    assert isinstance(service.queue, CollectingQueue), service.queue
    return service.queue.tasks


class CrashOnceBlobStore:
    """Wraps a blob store; the first put of a sketch raises, as if the worker were killed."""

    def __init__(self, inner: BlobStore) -> None:
        self.inner = inner
        self.crashed = False

    def put(self, key: str, data: bytes, content_type: str) -> None:
        if not self.crashed and key.endswith(".png"):
            self.crashed = True
            raise SystemExit("worker killed between the model call and the write")
        self.inner.put(key, data, content_type)

    def get(self, key: str) -> bytes:
        return self.inner.get(key)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def signed_url(self, key: str, *, expires_s: int) -> str | None:
        return self.inner.signed_url(key, expires_s=expires_s)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def delete_under(self, folder: str) -> int:
        return self.inner.delete_under(folder)


class ScriptedImageModel(FakeImageModel):
    """Answers with the given images in turn (the last one from then on): what a model
    that ignores the style returns. ``requests`` records every prompt it was asked."""

    def __init__(self, answers: Sequence[bytes]) -> None:
        super().__init__()
        self.answers = list(answers)

    def generate_image(self, request: ImageRequest) -> ImageResponse:
        with self._lock:
            self.requests.append(request)
            data = self.answers[min(len(self.requests), len(self.answers)) - 1]
        return ImageResponse(
            data=data, mime_type="image/png", model_used=request.model, finish_reason="STOP"
        )
