"""A loose, hand-drawn pen for the offline sketch model.

Every line is drawn more than once with a little wobble, the way a rough concept sketch
doubles its strokes; shapes overshoot their start like a quick freehand circle.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import ImageDraw

__all__ = ["Pen", "Point", "arc_points", "ellipse_points"]

Point = tuple[float, float]


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


@dataclass
class Pen:
    draw: ImageDraw.ImageDraw
    rng: random.Random
    width: float = 8.0  # px at the working size
    passes: int = 2  # how many times each stroke is drawn
    wobble: float = 3.0  # px of hand jitter per control point
    ink: int = 0

    def _jitter(self, points: Sequence[Point], amount: float) -> list[Point]:
        # One offset for the whole pass (a slightly misplaced hand) plus a small per-point one.
        dx, dy = self.rng.gauss(0, amount), self.rng.gauss(0, amount)
        return [
            (x + dx + self.rng.gauss(0, amount * 0.35), y + dy + self.rng.gauss(0, amount * 0.35))
            for x, y in points
        ]

    def stroke(self, points: Sequence[Point], *, weight: float = 1.0) -> None:
        if len(points) < 2:
            return
        for n in range(self.passes):
            width = max(1, round(self.width * weight * (1.0 if n == 0 else 0.55)))
            path = self._jitter(points, self.wobble * (0.6 if n == 0 else 1.0))
            self.draw.line(path, fill=self.ink, width=width, joint="curve")
            radius = width / 2
            for x, y in (path[0], path[-1]):  # round caps
                self.draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=self.ink)

    def shape(self, points: Sequence[Point], *, weight: float = 1.0) -> None:
        """A closed shape that overshoots where it started, as a fast freehand loop does."""
        overshoot = list(points) + list(points[1 : 1 + max(2, len(points) // 10)])
        self.stroke(overshoot, weight=weight)

    def fill(self, points: Sequence[Point]) -> None:
        self.draw.polygon(self._jitter(points, self.wobble * 0.5), fill=self.ink)

    def dot(self, x: float, y: float, r: float) -> None:
        self.draw.ellipse((x - r, y - r, x + r, y + r), fill=self.ink)
