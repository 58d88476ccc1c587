"""``OfflineSketchAdapter``: real rough sketches with no network and no key.

The embedded default model. It draws a mascot figure procedurally from the brief's words,
composes it by the sketch's layout, pushes its proportions by the exaggeration, and takes its
line weight and number of passes from the style's reference images. The same request always
gives the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import random
import threading
import uuid
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from sketchgen.errors import ModelError, NotFoundError
from sketchgen.generate._figure import figure_for, refine_figure, render
from sketchgen.generate._strokes import Pen
from sketchgen.generate.base import ImageModelAdapter
from sketchgen.generate.models import OFFLINE_MODEL_ID
from sketchgen.ports import BatchStatus, ImageRequest, ImageResponse, ReferencePart
from sketchgen.schemas import pixel_size

__all__ = ["OfflineSketchAdapter"]

MODEL_ID = OFFLINE_MODEL_ID
_WORK_LONG_SIDE = 1024  # drawn at 1K; the finisher scales to 2K/4K without new detail


def _stroke_style(references: tuple[ReferencePart, ...]) -> tuple[float, int]:
    """(pen width in px at 1K, passes) measured from the references' own strokes.

    Stroke width ≈ 2 × dark area / dark boundary length; thin, light references (pencil)
    get three thinner passes, bold ink two heavy ones.
    """
    widths = []
    for part in references:
        with Image.open(io.BytesIO(part.data)) as image:
            gray = np.asarray(image.convert("L"))
        dark = gray < 128
        inner = dark[1:-1, 1:-1]
        boundary = inner & ~(dark[:-2, 1:-1] & dark[2:, 1:-1] & dark[1:-1, :-2] & dark[1:-1, 2:])
        if boundary.any():
            widths.append(2.0 * inner.sum() / boundary.sum() * _WORK_LONG_SIDE / max(gray.shape))
    if not widths:
        return 8.0, 2
    width = float(np.clip(np.median(widths), 3.0, 16.0))
    return width, 3 if width < 6.0 else 2


class OfflineSketchAdapter(ImageModelAdapter):
    def __init__(self) -> None:
        self._batches: dict[str, tuple[ImageResponse | Exception, ...]] = {}
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return "offline"

    # A local batch: drawn at once and kept in this process until polled, so `--batch`
    # runs the same path with no key. (Gemini's batches live on Google's side.)
    supports_batch = True

    def submit_batch(self, requests: Sequence[ImageRequest], *, display_name: str) -> str:
        results: list[ImageResponse | Exception] = []
        for request in requests:
            try:
                results.append(self.generate_image(request))
            except ModelError as error:
                results.append(error)
        name = f"batches/offline-{uuid.uuid4().hex[:12]}"
        with self._lock:
            self._batches[name] = tuple(results)
        return name

    def batch_status(self, name: str) -> BatchStatus:
        with self._lock:
            results = self._batches.get(name)
        if results is None:
            raise NotFoundError(f"no offline batch {name!r} in this process")
        return BatchStatus(name, "succeeded", results)

    def generate_image(self, request: ImageRequest) -> ImageResponse:
        key = (
            f"{request.seed}|{request.index}|{request.brief}|{request.variation.layout}|"
            f"{request.variation.exaggeration}|{request.instruction or ''}"
        )
        rng = random.Random(hashlib.sha256(key.encode()).digest())
        width, height = pixel_size(request.image_size, request.aspect_ratio)
        scale = _WORK_LONG_SIDE / max(width, height)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        figure = figure_for(
            request.brief, request.variation.layout, request.variation.exaggeration, rng
        )
        if request.instruction:
            figure, _ = refine_figure(figure, request.instruction)
        pen_width, passes = _stroke_style(request.references)
        canvas = Image.new("L", size, 255)
        pen = Pen(
            ImageDraw.Draw(canvas), rng, width=pen_width, passes=passes, wobble=pen_width * 0.45
        )
        render(pen, figure, request.variation.layout, size, rng)
        buffer = io.BytesIO()
        canvas.save(buffer, format="PNG")
        return ImageResponse(
            data=buffer.getvalue(), mime_type="image/png", model_used=MODEL_ID, finish_reason="STOP"
        )
