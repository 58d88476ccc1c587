"""``OfflineSketchAdapter``: real rough sketches with no network and no key.

The embedded default model. It draws a mascot figure procedurally from the brief's words,
frames it by the sketch's layout inside the margins at the size and aspect ratio asked for,
pushes its proportions and pose by the exaggeration, and takes its line weight (6-10 px at
1K, scaled with the size) from the style's reference images. Its lines are smooth, bold and
anti-aliased, so they meet the visual rules as drawn: the style guard never has to redraw
them. A refinement redraws the parent's figure with the instruction's change (more or less
exaggerated, zoom, turn, pose). The same request always gives the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import random
import threading
import uuid
from collections.abc import Sequence

import numpy as np
from PIL import Image

from sketchgen.errors import ModelError, NotFoundError
from sketchgen.generate._figure import figure_for, refine_figure, render
from sketchgen.generate.base import ImageModelAdapter
from sketchgen.generate.models import OFFLINE_MODEL_ID
from sketchgen.ports import BatchStatus, ImageRequest, ImageResponse, ReferencePart
from sketchgen.schemas import pixel_size

__all__ = ["OfflineSketchAdapter"]

MODEL_ID = OFFLINE_MODEL_ID
# Pen widths are given at 1K (the styles' 6-10 px) and scale with the long side.
_WORK_LONG_SIDE = 1024
MIN_STROKE_PX_1K, MAX_STROKE_PX_1K = 6.0, 10.0
_REFERENCE_WIDTH_SPAN = 16.0  # reference strokes 6..22 px at 1K → the pen's 6..10 px


def _stroke_width(references: tuple[ReferencePart, ...]) -> float:
    """The pen's width in px at 1K, from the references' own strokes, within the styles'
    6-10 px: the references' widths (about 6-9 px for pencil, 20-25 px for bold ink
    thumbnails) map onto that range, so pencil gets the light end and ink the heavy one.

    Stroke width ≈ 2 × dark area / dark boundary length.
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
        return 8.0
    measured = float(np.median(widths))
    span = MAX_STROKE_PX_1K - MIN_STROKE_PX_1K
    pen = MIN_STROKE_PX_1K + (measured - MIN_STROKE_PX_1K) * span / _REFERENCE_WIDTH_SPAN
    return float(np.clip(pen, MIN_STROKE_PX_1K, MAX_STROKE_PX_1K))


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
        # Neither the sketch's index nor the instruction: a job's plan never repeats a
        # (layout, exaggeration) pair, and a refinement (same seed, the parent's pair) must
        # redraw the parent's figure with only the instruction's change.
        key = (
            f"{request.seed}|{request.brief}|{request.variation.layout}|"
            f"{request.variation.exaggeration}"
        )
        rng = random.Random(hashlib.sha256(key.encode()).digest())
        size = pixel_size(request.image_size, request.aspect_ratio)
        figure = figure_for(
            request.brief, request.variation.layout, request.variation.exaggeration, rng
        )
        if request.instruction:
            figure, _ = refine_figure(figure, request.instruction)
        # Drawn at the size asked for, so a 2K or 4K sketch has lines as smooth as a 1K one.
        stroke_px = _stroke_width(request.references) * max(size) / _WORK_LONG_SIDE
        canvas = render(figure, request.variation.layout, size, rng, stroke_px=stroke_px)
        buffer = io.BytesIO()
        canvas.save(buffer, format="PNG")
        return ImageResponse(
            data=buffer.getvalue(), mime_type="image/png", model_used=MODEL_ID, finish_reason="STOP"
        )
