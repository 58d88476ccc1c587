import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from sketchgen import finish_sketch
from sketchgen.errors import ConfigError, NoImageError
from sketchgen.finish import finish_sketch_with_qa, measure
from sketchgen.schemas import pixel_size
from tests.helpers.images import offspec_drawing


def _pixels(png: bytes) -> tuple[Image.Image, np.ndarray]:
    image = Image.open(io.BytesIO(png))
    return image, np.asarray(image)


def _assert_rules(pixels: np.ndarray) -> None:
    h, w = pixels.shape
    bh, bw = round(h * 0.05), round(w * 0.05)
    border = np.concatenate(
        [pixels[:bh].ravel(), pixels[-bh:].ravel(), pixels[:, :bw].ravel(), pixels[:, -bw:].ravel()]
    )
    assert np.mean(border >= 245) >= 0.95
    assert np.mean((pixels >= 40) & (pixels <= 215)) <= 0.12
    assert 0.005 <= np.mean(pixels < 128) <= 0.40


@pytest.mark.parametrize("aspect_ratio", ["1:1", "16:9", "9:16", "3:4", "21:9"])
def test_offspec_colour_gradient_speckle_meets_the_rules(aspect_ratio: str) -> None:
    png, qa = finish_sketch_with_qa(offspec_drawing(900, 700, seed=1), "1K", aspect_ratio)
    image, pixels = _pixels(png)
    assert image.format == "PNG" and image.mode == "L"
    assert image.size == pixel_size("1K", aspect_ratio)
    _assert_rules(pixels)
    assert qa == measure(pixels) and qa.passed
    assert (qa.width, qa.height) == image.size


def test_background_is_pure_white_and_strokes_stay_dark() -> None:
    _, pixels = _pixels(finish_sketch(offspec_drawing(1024, 1024, seed=2)))
    assert np.mean(pixels == 255) > 0.85  # paper: no gradient, no speckle left
    assert np.mean(pixels < 40) > 0.02  # the coloured outlines came out near black


def test_transparent_background_becomes_paper() -> None:
    image = Image.new("RGBA", (512, 512), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse((100, 100, 400, 400), outline=(0, 0, 0, 255), width=12)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    _, pixels = _pixels(finish_sketch(buffer.getvalue()))
    _assert_rules(pixels)


def test_jpeg_and_tiny_input_upscaled_to_2k() -> None:
    png = finish_sketch(offspec_drawing(160, 120, seed=3, fmt="JPEG"), "2K", "4:3")
    image, pixels = _pixels(png)
    assert image.size == (2048, 1536)
    _assert_rules(pixels)


def test_4k_output_size() -> None:
    image, _ = _pixels(finish_sketch(offspec_drawing(1024, 1024, seed=4), "4K", "1:1"))
    assert image.size == (4096, 4096) and image.mode == "L"


def test_clean_input_survives_and_blank_stays_white() -> None:
    clean = Image.new("L", (1024, 1024), 255)
    ImageDraw.Draw(clean).rectangle((200, 200, 800, 800), outline=0, width=10)
    buffer = io.BytesIO()
    clean.save(buffer, format="PNG")
    _, qa = finish_sketch_with_qa(buffer.getvalue())
    assert qa.passed and qa.dark_ratio > 0.02
    blank = io.BytesIO()
    Image.new("RGB", (800, 800), (205, 205, 205)).save(blank, format="PNG")
    _, qa = finish_sketch_with_qa(blank.getvalue())
    assert qa.dark_ratio == 0.0 and not qa.passed  # nothing drawn: QA says so


def test_output_is_deterministic() -> None:
    data = offspec_drawing(700, 700, seed=5)
    assert finish_sketch(data) == finish_sketch(data)


@pytest.mark.parametrize(
    ("size", "ratio", "field"), [("8K", "1:1", "image_size"), ("1K", "7:3", "aspect_ratio")]
)
def test_bad_size_or_ratio_names_the_field(size: str, ratio: str, field: str) -> None:
    with pytest.raises(ConfigError) as error:
        finish_sketch(offspec_drawing(64, 64), size, ratio)
    assert error.value.field == field


@pytest.mark.parametrize("data", [b"", b"not an image", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40])
def test_garbage_is_a_no_image_error(data: bytes) -> None:
    with pytest.raises(NoImageError) as error:
        finish_sketch(data)
    assert error.value.finish_reason == "UNDECODABLE_IMAGE"
