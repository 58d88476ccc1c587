"""A reference image upload, decoded safely and normalised.

Checks run cheapest first and before any pixel is decoded: the byte size, then the real type
(from the content, never the name: Pillow is told to try PNG, JPEG and WebP only, so SVG or
HTML named ``.png`` is refused), then the pixel count from the header (a decompression bomb is
refused before it is expanded; Pillow's own guard is set to the same process-wide limit,
:mod:`sketchgen.pixel_limit`). Only then is the image decoded, fully (a truncated file is
refused, not padded), turned upright by its EXIF orientation, and re-encoded as a grayscale
PNG with a long side of at most 2048 pixels and no metadata (EXIF, text chunks, ICC) at all.
The SHA-256 of that PNG is the reference's identity.

A JPEG more than twice that size is decoded in draft mode: libjpeg scales it by 1/2, 1/4 or
1/8 while decoding, to the smallest size still at least 2048 on the long side, and greyscale
JPEGs decode straight to one channel. A 5000 × 5000 CMYK JPEG then needs a 2500 × 2500 × 4
buffer (24 MiB), not 5000 × 5000 × 4 (95 MiB) plus its conversions.
"""

from __future__ import annotations

import hashlib
import io
import math
import warnings
from dataclasses import dataclass, field

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from sketchgen.errors import ImageRejectedError
from sketchgen.pixel_limit import MAX_IMAGE_PIXELS

__all__ = [
    "ACCEPTED_FORMATS",
    "MAX_LONG_SIDE",
    "MAX_UPLOAD_BYTES",
    "MAX_UPLOAD_PIXELS",
    "NormalisedImage",
    "normalise_reference",
]

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_UPLOAD_PIXELS = MAX_IMAGE_PIXELS
MAX_LONG_SIDE = 2048
ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP")


@dataclass(frozen=True, slots=True)
class NormalisedImage:
    png: bytes = field(repr=False)
    sha256: str
    width: int
    height: int
    source_format: str


def normalise_reference(
    data: bytes,
    *,
    max_bytes: int = MAX_UPLOAD_BYTES,
    max_pixels: int = MAX_UPLOAD_PIXELS,
    field_name: str = "image",
) -> NormalisedImage:
    """The upload as a grayscale PNG, or :class:`ImageRejectedError` naming the problem."""
    if not data:
        raise ImageRejectedError(422, "empty_image", "the image is empty", field_name)
    if len(data) > max_bytes:
        raise ImageRejectedError(
            413, "image_too_large", f"the image is over {max_bytes} bytes", field_name
        )
    # Pillow's own bomb guard warns at MAX_IMAGE_PIXELS and raises at twice that; both become
    # errors here, and our (lower) limit is checked from the header first anyway.
    if ImageFile.LOAD_TRUNCATED_IMAGES:  # a process-wide switch someone may have flipped
        raise ImageRejectedError(
            500, "internal", "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is on", field_name
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
        except (
            UnidentifiedImageError,
            Image.DecompressionBombError,
            Image.DecompressionBombWarning,
        ) as error:
            if isinstance(error, UnidentifiedImageError):
                raise ImageRejectedError(
                    415,
                    "unsupported_image_type",
                    "not a PNG, JPEG or WebP image (the content decides, not the name)",
                    field_name,
                ) from None
            raise _too_many_pixels(max_pixels, field_name) from None
        except (OSError, ValueError, SyntaxError) as error:
            raise _broken(error, field_name) from None
        width, height = image.size
        if width * height > max_pixels:
            raise _too_many_pixels(max_pixels, field_name)
        source_format = str(image.format)
        try:
            if source_format == "JPEG" and max(width, height) > 2 * MAX_LONG_SIDE:
                scale = MAX_LONG_SIDE / max(width, height)
                image.draft("L", (math.ceil(width * scale), math.ceil(height * scale)))
            image.load()
            # One channel first, then turned in place: the decoded image (four channels for
            # CMYK) is never copied, and is let go before the scaling.
            gray = image.convert("L")
            image.close()
            ImageOps.exif_transpose(gray, in_place=True)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _too_many_pixels(max_pixels, field_name) from None
        except (OSError, ValueError, SyntaxError, EOFError) as error:
            raise _broken(error, field_name) from None
    gray.thumbnail((MAX_LONG_SIDE, MAX_LONG_SIDE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    gray.save(out, format="PNG", optimize=True)  # a new image: no EXIF, text or ICC chunks
    png = out.getvalue()
    return NormalisedImage(
        png=png,
        sha256=hashlib.sha256(png).hexdigest(),
        width=gray.width,
        height=gray.height,
        source_format=source_format,
    )


def _too_many_pixels(max_pixels: int, field_name: str) -> ImageRejectedError:
    return ImageRejectedError(
        413,
        "image_too_large",
        f"the image has more than {max_pixels / 1e6:g} megapixels",
        field_name,
    )


def _broken(error: BaseException, field_name: str) -> ImageRejectedError:
    return ImageRejectedError(
        422,
        "broken_image",
        f"the image cannot be decoded (truncated or corrupt): {error}",
        field_name,
    )
