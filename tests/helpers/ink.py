"""Comparing exports with the sketch they came from: ink masks and IoU with a tolerance."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter

INK_BELOW = 128  # a pixel darker than mid-grey is ink


def ink_of_png(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("L")) < INK_BELOW


def ink_of_svg(svg: bytes) -> np.ndarray:
    """The SVG rasterised by resvg (a separate renderer from the tracer), over white."""
    import resvg

    tree = resvg.usvg.Tree.from_str(svg.decode(), resvg.usvg.Options.default())
    rendered = resvg.render(tree, (1.0, 0.0, 0.0, 0.0, 1.0, 0.0), bg_color=(255, 255, 255, 255))
    return ink_of_png(rendered)


def tolerant_iou(a: np.ndarray, b: np.ndarray, tolerance_px: int) -> float:
    """IoU where a pixel of one mask counts as matched if the other has ink within
    ``tolerance_px`` of it (a square neighbourhood)."""
    if a.shape != b.shape:
        raise AssertionError(f"sizes differ: {a.shape} vs {b.shape}")
    a_near_b = a & _grown(b, tolerance_px)
    b_near_a = b & _grown(a, tolerance_px)
    matched = int(a_near_b.sum()) + int(b_near_a.sum())
    total = int(a.sum()) + int(b.sum())
    return matched / total if total else 1.0


def _grown(mask: np.ndarray, px: int) -> np.ndarray:
    image = Image.fromarray(mask.astype(np.uint8) * 255, "L")
    return np.asarray(image.filter(ImageFilter.MaxFilter(2 * px + 1))) > 0
