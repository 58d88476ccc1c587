"""The raster layers every export is built from: the sketch as ink on transparency, a white
background, an empty layer to draw on, and a thumbnail."""

from __future__ import annotations

import io

from PIL import Image, UnidentifiedImageError

from sketchgen.errors import InputError

__all__ = [
    "decode",
    "empty_layer",
    "encode",
    "ink_layer",
    "thumbnail",
    "transparent_png",
    "white_layer",
]

THUMBNAIL_MAX_PX = 256  # OpenRaster's limit for Thumbnails/thumbnail.png


def decode(png: bytes) -> Image.Image:
    """The sketch as 8-bit grayscale (a finished sketch already is; anything else is made so)."""
    try:
        with Image.open(io.BytesIO(png)) as image:
            return image.convert("L")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise InputError("the sketch is not a readable PNG image", field="image") from None


def encode(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG", optimize=False, compress_level=6)
    return out.getvalue()


def ink_layer(gray: Image.Image) -> Image.Image:
    """Black ink whose opacity is the sketch's darkness: over white it gives back the sketch
    exactly (0 + (1 - a) * 255 = gray), and over the designer's own colours it stays a line."""
    black = Image.new("L", gray.size, 0)
    alpha = gray.point(lambda value: 255 - value)
    return Image.merge("RGBA", (black, black, black, alpha))


def white_layer(size: tuple[int, int]) -> Image.Image:
    return Image.new("RGBA", size, (255, 255, 255, 255))


def empty_layer(size: tuple[int, int]) -> Image.Image:
    return Image.new("RGBA", size, (0, 0, 0, 0))


def thumbnail(gray: Image.Image, max_px: int = THUMBNAIL_MAX_PX) -> Image.Image:
    small = gray.copy()
    small.thumbnail((max_px, max_px), Image.Resampling.LANCZOS)
    return small


def transparent_png(png: bytes) -> bytes:
    """White → alpha, ink kept: grayscale + alpha, so it stays as small as the sketch."""
    gray = decode(png)
    alpha = gray.point(lambda value: 255 - value)
    return encode(Image.merge("LA", (Image.new("L", gray.size, 0), alpha)))
