"""Images are sized from their header before they are decoded, against one pixel limit that
Pillow's own guard shares (sketchgen.pixel_limit); large JPEGs are decoded in draft mode
(issue 23, item 4). Memory per upload is measured in bench/bench_edge.py."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from sketchgen.errors import ImageRejectedError, NoImageError
from sketchgen.finish import finish_sketch
from sketchgen.pixel_limit import MAX_IMAGE_PIXELS
from sketchgen.settings import Settings
from sketchgen.styles.upload import MAX_LONG_SIDE, MAX_UPLOAD_PIXELS, normalise_reference
from tests.helpers.images import bomb_png, cmyk_jpeg


def test_one_pixel_limit_for_pillow_uploads_and_settings() -> None:
    assert Image.MAX_IMAGE_PIXELS == MAX_IMAGE_PIXELS == MAX_UPLOAD_PIXELS == 5000 * 5000
    assert Settings(max_reference_pixels=1_000_000).max_reference_pixels == 1_000_000
    with pytest.raises(ValidationError, match="max_reference_pixels"):
        Settings(max_reference_pixels=MAX_IMAGE_PIXELS + 1)  # Pillow would refuse it anyway


@pytest.mark.parametrize("side", [5001, 100_000, 2**31 - 1])
def test_a_bomb_is_refused_from_its_header(side: int) -> None:
    data = bomb_png(side)
    assert len(data) < 64 * 1024  # a few bytes that claim billions of pixels
    with pytest.raises(ImageRejectedError) as caught:
        normalise_reference(data)
    assert caught.value.http_status == 413 and caught.value.code == "image_too_large"
    assert caught.value.field == "image"
    with pytest.raises(NoImageError):  # the finisher, on a model's answer, as well
        finish_sketch(data)


def test_a_5000_square_cmyk_jpeg_is_accepted_and_drawn_as_a_full_decode_would() -> None:
    data = cmyk_jpeg(5000)
    result = normalise_reference(data)
    assert (result.width, result.height, result.source_format) == (2048, 2048, "JPEG")
    drafted = np.asarray(Image.open(io.BytesIO(result.png)), dtype=np.float32)
    assert drafted.ndim == 2  # grayscale
    # The same image decoded in full, then scaled: draft mode must not change the drawing.
    full = Image.open(io.BytesIO(data)).convert("L")
    full.thumbnail((MAX_LONG_SIDE, MAX_LONG_SIDE), Image.Resampling.LANCZOS)
    difference = np.abs(drafted - np.asarray(full, dtype=np.float32))
    assert float(difference.mean()) < 4.0, float(difference.mean())


def test_a_small_jpeg_is_not_reduced() -> None:
    result = normalise_reference(cmyk_jpeg(1500))
    assert (result.width, result.height) == (1500, 1500)
