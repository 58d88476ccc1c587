"""Synthetic off-spec model output for the finisher's tests and benchmark."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw


def offspec_drawing(
    width: int = 1024, height: int = 1024, seed: int = 0, fmt: str = "PNG"
) -> bytes:
    """Colour strokes on a grey vertical gradient with dark speckle: everything we must undo."""
    rng = np.random.default_rng(seed)
    gradient = np.linspace(150, 235, height, dtype=np.float32)[:, None] * np.ones((1, width))
    rgb = np.stack([gradient, gradient * 0.97, gradient * 0.92], axis=-1).astype(np.uint8)
    image = Image.fromarray(rgb, "RGB")
    draw = ImageDraw.Draw(image)
    s = min(width, height) / 1024
    cx, cy = width / 2, height / 2
    draw.ellipse(
        (cx - 210 * s, cy - 310 * s, cx + 210 * s, cy + 130 * s),
        outline=(200, 30, 30),
        width=max(2, int(14 * s)),
    )
    draw.line(
        (cx - 310 * s, cy + 340 * s, cx + 310 * s, cy - 210 * s),
        fill=(30, 60, 200),
        width=max(2, int(12 * s)),
    )
    draw.rectangle(
        (cx - 90 * s, cy + 140 * s, cx + 90 * s, cy + 390 * s),
        outline=(20, 140, 40),
        width=max(2, int(10 * s)),
    )
    pixels = np.asarray(image).copy()
    count = int(width * height * 0.02)
    ys, xs = rng.integers(0, height, count), rng.integers(0, width, count)
    pixels[ys, xs] = rng.integers(60, 140, (count, 1))
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


def cmyk_jpeg(side: int = 5000) -> bytes:
    """A ``side`` × ``side`` CMYK JPEG with strokes on it (about a megabyte at 5000): few
    bytes, many pixels, four channels — the upload that cost 296 MiB to decode (issue 23)."""
    gray = Image.new("L", (side, side), 235)
    draw = ImageDraw.Draw(gray)
    for i in range(0, side, max(1, side // 60)):
        draw.line([(i, 0), (side - i, side)], fill=20, width=3)
        draw.ellipse([i // 2, i // 3, i // 2 + side // 8, i // 3 + side // 9], outline=60, width=4)
    out = io.BytesIO()
    gray.convert("CMYK").save(out, format="JPEG", quality=70)
    return out.getvalue()


def bomb_png(side: int = 100_000) -> bytes:
    """A PNG whose header claims ``side`` × ``side`` pixels, in a few hundred bytes: a
    decompression bomb, to be refused from the header before anything is inflated."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)  # 8-bit grayscale
    rows = zlib.compress(b"\x00" * 4096)  # the first bytes; the rest never arrive
    signature = b"\x89PNG\r\n\x1a\n"
    return signature + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
