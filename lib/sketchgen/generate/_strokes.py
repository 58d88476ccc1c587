"""A hand-drawn pen for the offline sketch model: record first, frame, then ink.

The figure is recorded as marks in its own units (:class:`Pen`), so its bounding box is known
before a pixel is drawn and the layout can frame it inside the margins at any size and aspect
ratio. :func:`ink` then draws every mark once, as one smooth, bold, anti-aliased line (drawn
on a canvas a few times larger and reduced, so edges are smooth and never stair-stepped),
with a slow wobble along its length the way a quick confident hand drifts, and an overshoot
where a closed shape meets itself. One pass, not doubled outlines: a designer draws over
these, and doubled lines read as noise and fill cells the style guard counts as solid ink.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from PIL import Image, ImageDraw

__all__ = [
    "Mark",
    "Pen",
    "Placement",
    "Point",
    "arc_points",
    "clip_runs",
    "ellipse_points",
    "ink",
]

Point = tuple[float, float]

# The supersampled canvas is at most this long: 4x at 1K, 3x at 2K, 2x at 4K.
_MAX_SUPERSAMPLED_SIDE = 8192


def ellipse_points(
    cx: float,
    cy: float,
    rx: float,
    ry: float,
    *,
    start: float = 0.0,
    sweep: float = 2 * math.pi,
    steps: int = 48,
    rotation: float = 0.0,
) -> list[Point]:
    cos_r, sin_r = math.cos(rotation), math.sin(rotation)
    points = []
    for i in range(steps + 1):
        t = start + sweep * i / steps
        x, y = rx * math.cos(t), ry * math.sin(t)
        points.append((cx + x * cos_r - y * sin_r, cy + x * sin_r + y * cos_r))
    return points


def arc_points(cx: float, cy: float, r: float, start: float, end: float) -> list[Point]:
    return ellipse_points(cx, cy, r, r, start=start, sweep=end - start, steps=16)


@dataclass(frozen=True)
class Mark:
    points: tuple[Point, ...]
    weight: float = 1.0  # × the pen's width
    closed: bool = False
    smooth: bool = True  # round a few control points into a curve (limbs); off keeps corners
    radius: float = 0.0  # a dot at points[0], in figure units


@dataclass
class Pen:
    """Records marks in figure units; nothing is drawn until :func:`ink`."""

    marks: list[Mark] = field(default_factory=list)

    def stroke(self, points: Sequence[Point], *, weight: float = 1.0, smooth: bool = True) -> None:
        if len(points) >= 2:
            self.marks.append(Mark(tuple(points), weight, smooth=smooth))

    def shape(self, points: Sequence[Point], *, weight: float = 1.0) -> None:
        """A closed outline (the last point may repeat the first)."""
        if len(points) >= 3:
            self.marks.append(Mark(tuple(points), weight, closed=True, smooth=len(points) > 8))

    def dot(self, x: float, y: float, r: float) -> None:
        self.marks.append(Mark(((x, y),), radius=r))

    def bounds(self) -> tuple[float, float, float, float]:
        xs = [x for m in self.marks for x, _ in m.points]
        ys = [y for m in self.marks for _, y in m.points]
        return min(xs), min(ys), max(xs), max(ys)


@dataclass(frozen=True)
class Placement:
    """Figure units to canvas pixels: ``canvas = offset + scale × figure``; below ``clip_y``
    (pixels) nothing is drawn (a close-up cut at the chest)."""

    scale: float
    offset: Point
    clip_y: float | None = None


def _chaikin(points: list[Point], rounds: int) -> list[Point]:
    for _ in range(rounds):
        smoothed = [points[0]]
        for (x0, y0), (x1, y1) in itertools.pairwise(points):
            smoothed += [(0.75 * x0 + 0.25 * x1, 0.75 * y0 + 0.25 * y1)]
            smoothed += [(0.25 * x0 + 0.75 * x1, 0.25 * y0 + 0.75 * y1)]
        smoothed.append(points[-1])
        points = smoothed
    return points


def _densify(points: list[Point], step: float) -> list[Point]:
    dense = [points[0]]
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        n = max(1, math.ceil(math.hypot(x1 - x0, y1 - y0) / step))
        dense += [(x0 + (x1 - x0) * k / n, y0 + (y1 - y0) * k / n) for k in range(1, n + 1)]
    return dense


def _wobble(
    points: list[Point], amplitude: float, wavelength: float, rng: random.Random
) -> list[Point]:
    """A slow sideways drift along the line: two sines of random phase, no per-point jitter
    (jitter is what makes a line look stair-stepped and hairy)."""
    phase1, phase2 = rng.uniform(0, 2 * math.pi), rng.uniform(0, 2 * math.pi)
    out, travelled = [], 0.0
    for i, (x, y) in enumerate(points):
        if i:
            travelled += math.hypot(x - points[i - 1][0], y - points[i - 1][1])
        ax, ay = points[max(0, i - 1)]
        bx, by = points[min(len(points) - 1, i + 1)]
        length = math.hypot(bx - ax, by - ay) or 1.0
        nx, ny = -(by - ay) / length, (bx - ax) / length
        t = travelled / wavelength
        drift = 0.7 * math.sin(2 * math.pi * t + phase1) + 0.3 * math.sin(5.3 * t + phase2)
        offset = amplitude * drift
        out.append((x + nx * offset, y + ny * offset))
    return out


def clip_runs(points: list[Point], clip_y: float | None) -> list[list[Point]]:
    """The runs of a polyline above ``clip_y``, cut exactly at it."""
    if clip_y is None:
        return [points]
    runs: list[list[Point]] = []
    run: list[Point] = []
    for i, (x, y) in enumerate(points):
        if y <= clip_y:
            if not run and i and points[i - 1][1] > clip_y:
                px, py = points[i - 1]
                run.append((px + (x - px) * (py - clip_y) / (py - y), clip_y))
            run.append((x, y))
        elif run:
            px, py = run[-1]
            run.append((px + (x - px) * (clip_y - py) / (y - py), clip_y))
            runs.append(run)
            run = []
    if run:
        runs.append(run)
    return [r for r in runs if len(r) >= 2]


def _line(draw: ImageDraw.ImageDraw, points: list[Point], width: int, fill: int) -> None:
    draw.line(points, fill=fill, width=width, joint="curve")
    radius = width / 2
    for x, y in (points[0], points[-1]):  # round caps
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=fill)


def ink(
    marks: Sequence[Mark],
    size: tuple[int, int],
    placement: Placement,
    *,
    stroke_px: float,
    rng: random.Random,
    silhouette: bool = False,
    frame: tuple[float, float, float, float] | None = None,
) -> Image.Image:
    """The marks drawn on white paper at ``size`` (grayscale, anti-aliased).

    ``stroke_px`` is the pen's width in output pixels. With ``silhouette`` the figure is one
    bold outline of its whole shape (every mark filled and unioned, only the edge inked): a
    thumbnail's read of the pose, with no solid fill the style guard would refuse. ``frame``
    is a thumbnail border in output pixels.
    """
    width, height = size
    ss = max(2, min(4, _MAX_SUPERSAMPLED_SIDE // max(width, height)))
    canvas = Image.new("L", (width * ss, height * ss), 255)
    draw = ImageDraw.Draw(canvas)
    pen = stroke_px * ss
    scale, (ox, oy) = placement.scale * ss, placement.offset
    clip = placement.clip_y * ss if placement.clip_y is not None else None

    def to_canvas(points: Sequence[Point]) -> list[Point]:
        return [(ox * ss + scale * x, oy * ss + scale * y) for x, y in points]

    paths: list[tuple[Mark, list[Point]]] = []
    for mark in marks:
        points = to_canvas(mark.points)
        if mark.radius:
            paths.append((mark, points))
            continue
        if mark.closed:
            lap = max(2, len(points) // 12)  # a fast freehand loop overshoots its start
            points = points + points[1 : 1 + lap] if not silhouette else points
        if mark.smooth and len(points) < 12:
            points = _chaikin(points, 3)
        if not silhouette:
            points = _densify(points, pen)
            points = _wobble(points, pen * 0.35, pen * 40, rng)
        paths.append((mark, points))

    if silhouette:
        # Union of every mark, grown by one pen width, then the union itself in white: only
        # a ring of ink around the whole shape is left.
        for grow, colour in ((pen * 2, 0), (0.0, 255)):
            for mark, points in paths:
                if mark.radius:
                    r = scale * mark.radius + grow / 2
                    x, y = points[0]
                    draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
                elif mark.closed:
                    draw.polygon(points, fill=colour)
                    _line(draw, [*points, points[0]], max(1, round(pen * 0.5 + grow)), colour)
                else:
                    _line(draw, points, max(1, round(pen * mark.weight * 1.6 + grow)), colour)
    else:
        for mark, points in paths:
            if mark.radius:
                # Dots (eyes, a nose) stay small next to the line: large solid dots are fills.
                r = min(scale * mark.radius, pen * 1.4)
                x, y = points[0]
                if clip is None or y + r <= clip:
                    draw.ellipse((x - r, y - r, x + r, y + r), fill=0)
                continue
            line_width = max(ss, round(pen * mark.weight))
            for run in clip_runs(points, clip):
                _line(draw, run, line_width, 0)
    if frame is not None:
        x0, y0, x1, y1 = (v * ss for v in frame)
        border = [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]
        _line(draw, _wobble(_densify(border, pen), pen * 0.2, pen * 60, rng), round(pen * 0.6), 0)
    return canvas.reduce(ss)
