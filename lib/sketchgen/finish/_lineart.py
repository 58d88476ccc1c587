"""Redraw an off-style picture (photograph, shaded render, texture, dark ground) as line art.

The outlines of the main shapes, as a designer would trace them:

1. Edges as Canny finds them (Gaussian blur, Sobel slope, thinning to the ridge, hysteresis),
   on colour: each pixel takes its strongest channel, so an orange ball on a teal ground of
   the same brightness still has an outline.
2. Only edges that also hold at twice the blur are kept (within a few pixels of one): the
   outline of a head does, skin pores, fur, paper grain and sensor noise do not.
3. Only strokes at least ``rules.min_stroke_length`` long are kept (connected components):
   small interior detail and leftover specks go.
4. Strokes are grown to ``rules.stroke_px_1k`` (scaled to the output), smoothed, and the
   whole drawing is centred inside a margin wider than the rules' border, on white.

A dark ground needs no inversion: an edge is an edge either way round, and the drawing is
always dark strokes on paper. Pure numpy and Pillow: the finisher runs in every function and
the CLI, and four filters do not justify scipy or scikit-image there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from sketchgen.finish._rules import VisualRules

__all__ = ["LineArt", "line_art"]

# Lines are found on a fixed working size: the scale of "main shape" vs "texture" is a share
# of the picture, not of its pixels, and a fixed size keeps 4K as cheap as 1K.
_WORK_LONG_SIDE = 768
# Blur before the slope, in working pixels: wide enough to smooth pores, fur and JPEG noise,
# narrow enough to keep a nose or a cup's handle.
_SIGMA = 2.0
# Strong edges: the top fifth of ridge pixels, and never under 2.5 levels a pixel (a 12-level
# step under that blur), so a flat or noisy picture does not make its own edges up. Weak edges
# (half of that) continue a strong one.
_STRONG_PERCENTILE = 80.0
_STRONG_FLOOR = 2.5
_WEAK_SHARE = 0.5
# A fine edge counts as a shape's when a coarse edge (half size, twice the blur) at least
# twice the minimum stroke length runs within this many working pixels.
_SUPPORT_PX = 3
_COARSE_LENGTH = 2.0
# The drawing sits inside this share of each side as margin, wider than the rules' border
# so the paper around it is clean even where strokes run to the picture's edge.
_MARGIN = 0.07
# Smoothing of the upscaled strokes, as a share of the upscale factor: rounds the working
# grid's steps off at 4K without thinning the stroke.
_SMOOTH = 0.9


def _label(mask: np.ndarray) -> np.ndarray:
    """Connected components (8-connectivity) of ``mask``'s pixels, in ``np.flatnonzero`` order:
    each pixel gets the lowest index (into that order) of its component.

    Hook-and-compress on the graph of neighbouring pixels: every round hooks each component
    root to the lowest root next to it and then compresses paths, so a long stroke settles in
    a few rounds (logarithmic in its length), and only the mask's pixels are touched.
    """
    width = mask.shape[1]
    index = np.flatnonzero(mask)
    count = index.size
    column = index % width
    firsts, seconds = [], []
    for offset, valid in (
        (1, column < width - 1),
        (width - 1, column > 0),
        (width, np.ones(count, dtype=bool)),
        (width + 1, column < width - 1),
    ):
        target = index + offset
        position = np.minimum(np.searchsorted(index, target), count - 1)
        hit = valid & (index[position] == target)
        firsts.append(np.flatnonzero(hit))
        seconds.append(position[hit])
    first, second = np.concatenate(firsts), np.concatenate(seconds)
    parent = np.arange(count)
    while True:
        a, b = parent[first], parent[second]
        if np.array_equal(a, b):
            return parent
        low = np.minimum(a, b)
        np.minimum.at(parent, a, low)
        np.minimum.at(parent, b, low)
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped


def _long_strokes(mask: np.ndarray, min_length: float) -> np.ndarray:
    """Keep the components whose bounding box spans at least ``min_length`` pixels."""
    if not mask.any():
        return mask
    root = _label(mask)
    ys, xs = np.divmod(np.flatnonzero(mask), mask.shape[1])
    order = np.argsort(root, kind="stable")
    own, ys, xs = root[order], ys[order], xs[order]
    starts = np.flatnonzero(np.r_[True, own[1:] != own[:-1]])
    span = np.maximum(
        np.maximum.reduceat(ys, starts) - np.minimum.reduceat(ys, starts),
        np.maximum.reduceat(xs, starts) - np.minimum.reduceat(xs, starts),
    )
    keep = np.zeros(root.size, dtype=bool)
    keep[own[starts]] = span + 1 >= min_length
    out = np.zeros_like(mask)
    out.ravel()[np.flatnonzero(mask)] = keep[root]
    return out


def _coherence(mask: np.ndarray, length: float) -> float:
    """The share of ``mask``'s pixels in components of at least ``length`` pixels. Edges are
    one pixel wide here, so a component's pixel count is its stroke length."""
    if not mask.any():
        return 0.0
    _, sizes = np.unique(_label(mask), return_counts=True)
    return float(sizes[sizes >= length].sum()) / float(sizes.sum())


def _dilate(mask: np.ndarray, times: int) -> np.ndarray:
    for _ in range(times):
        grown = mask.copy()
        grown[1:] |= mask[:-1]
        grown[:-1] |= mask[1:]
        mask = grown.copy()
        mask[:, 1:] |= grown[:, :-1]
        mask[:, :-1] |= grown[:, 1:]
    return mask


def _sobel(channel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slope along x and y in levels per pixel (Sobel, normalised by its weight of 8)."""
    padded = np.pad(channel, 1, mode="edge")
    smooth_y = padded[:-2] + 2 * padded[1:-1] + padded[2:]
    smooth_x = padded[:, :-2] + 2 * padded[:, 1:-1] + padded[:, 2:]
    gx = (smooth_y[:, 2:] - smooth_y[:, :-2]) / 8
    gy = (smooth_x[2:] - smooth_x[:-2]) / 8
    return gx, gy


def _ridges(image: Image.Image) -> np.ndarray:
    """Edge strength on its ridge (non-maximum suppression), and the contrast it is
    judged against. Colour edges count: an orange shape on a teal ground of the same
    brightness is still a shape, so each pixel takes its strongest channel."""
    blurred = np.asarray(image.filter(ImageFilter.GaussianBlur(_SIGMA)), dtype=np.float32)
    if blurred.ndim == 2:
        blurred = blurred[..., None]
    slopes = [_sobel(blurred[..., c]) for c in range(blurred.shape[2])]
    gx_all = np.stack([gx for gx, _ in slopes])
    gy_all = np.stack([gy for _, gy in slopes])
    strongest = np.argmax(gx_all**2 + gy_all**2, axis=0)[None]
    gx_best = np.take_along_axis(gx_all, strongest, axis=0)[0]
    gy_best = np.take_along_axis(gy_all, strongest, axis=0)[0]
    best: np.ndarray = np.hypot(gx_best, gy_best)
    # Keep a pixel only where it is the strongest across the edge (4 directions).
    angle = (np.rad2deg(np.arctan2(gy_best, gx_best)) + 180.0) % 180.0
    sector = ((angle + 22.5) // 45).astype(np.int8) % 4
    padded = np.pad(best, 1)
    h, w = best.shape
    ridge = np.zeros_like(best)
    for value, (dy, dx) in enumerate(((0, 1), (1, 1), (1, 0), (1, -1))):
        ahead = padded[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
        behind = padded[1 - dy : 1 - dy + h, 1 - dx : 1 - dx + w]
        here = (sector == value) & (best >= ahead) & (best > behind)
        ridge[here] = best[here]
    return ridge


def _hysteresis(ridge: np.ndarray, weak: float, seeds: np.ndarray) -> np.ndarray:
    """Weak edges survive only where joined to a seed (Canny)."""
    mask = ridge >= weak
    if not mask.any():
        return mask
    root = _label(mask)
    strong_roots = np.zeros(root.size, dtype=bool)
    strong_roots[root[seeds[mask] > 0]] = True
    out = np.zeros_like(mask)
    out.ravel()[np.flatnonzero(mask)] = strong_roots[root]
    return out


def _edges(image: Image.Image) -> np.ndarray:
    ridge = _ridges(image)
    on_ridge = ridge[ridge > 0]
    if not on_ridge.size:
        return ridge > 0
    strong = max(_STRONG_FLOOR, float(np.percentile(on_ridge, _STRONG_PERCENTILE)))
    return _hysteresis(ridge, strong * _WEAK_SHARE, ridge >= strong)


@dataclass(frozen=True, slots=True)
class LineArt:
    """A redrawing and what the guard judges it by."""

    drawing: np.ndarray  # black strokes on white, height × width, uint8
    structure: float  # share of the found line ink that survived as shapes (not texture)
    coherence: float  # share of the drawing's line ink in long strokes (not scattered dashes)


def line_art(image: Image.Image, width: int, height: int, rules: VisualRules) -> LineArt:
    """The picture's main shapes as black strokes on white, with the figures the guard uses
    to refuse a drawing made mostly of leftovers or of scattered dashes."""
    scale = _WORK_LONG_SIDE / max(image.size)
    work_size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    work = image.resize(work_size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    found = _edges(work)
    # Shapes are edges that hold at a coarser scale too (half the size, so twice the blur);
    # texture, grain and noise do not. Fine edges are kept only near long coarse ones.
    coarse_size = (max(1, work_size[0] // 2), max(1, work_size[1] // 2))
    coarse = _edges(work.resize(coarse_size, Image.Resampling.BOX))
    coarse = _long_strokes(coarse, _COARSE_LENGTH * rules.min_stroke_length * _WORK_LONG_SIDE / 2)
    support = np.asarray(Image.fromarray(coarse).resize(work_size, Image.Resampling.NEAREST))
    found &= _dilate(support, _SUPPORT_PX)
    found_ink = int(np.count_nonzero(found))
    kept = _long_strokes(found, rules.min_stroke_length * _WORK_LONG_SIDE)
    structure = float(np.count_nonzero(kept)) / found_ink if found_ink else 0.0
    coherence = _coherence(kept, rules.coherent_length * _WORK_LONG_SIDE)

    # Into the output: the drawing fits inside the margins, strokes at the rules' weight.
    inner_w, inner_h = (round(width * (1 - 2 * _MARGIN)), round(height * (1 - 2 * _MARGIN)))
    fit = min(inner_w / work_size[0], inner_h / work_size[1])
    size = (max(1, round(work_size[0] * fit)), max(1, round(work_size[1] * fit)))
    stroke_px = rules.stroke_px_1k * max(width, height) / 1024
    # An edge is 1 px wide at working size; grow it to the stroke weight there, and let the
    # smooth upscale below round its ends and edges.
    grow = max(0, round((stroke_px / fit - 1.0) / 2))
    ink = Image.fromarray((_dilate(kept, grow) * 255).astype(np.uint8))
    ink = ink.resize(size, Image.Resampling.BILINEAR)
    ink = ink.filter(ImageFilter.GaussianBlur(max(0.5, fit * _SMOOTH)))
    coverage = np.asarray(ink, dtype=np.float32)
    # A narrow ramp around half coverage: solid strokes, a one-pixel anti-aliased rim.
    drawing = np.clip(255.0 - (coverage - 96.0) * (255.0 / 64.0), 0.0, 255.0).astype(np.uint8)
    canvas = np.full((height, width), 255, dtype=np.uint8)
    top, left = (height - size[1]) // 2, (width - size[0]) // 2
    canvas[top : top + size[1], left : left + size[0]] = drawing
    return LineArt(canvas, structure, coherence)
