"""The offline model's subject: a mascot figure built from the brief, posed by the plan.

Everything is laid out in a figure frame (height 1, feet at the origin, y down) and mapped
onto the canvas by the layout, so composition and proportions vary independently.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from PIL import Image

from sketchgen.generate._strokes import (
    Pen,
    Placement,
    Point,
    arc_points,
    clip_runs,
    ellipse_points,
    ink,
)

__all__ = ["Figure", "figure_for", "render"]

EXAGGERATION_LEVEL = {"subtle": 0.0, "moderate": 1.0, "extreme": 2.0}

# Brief words → what the figure carries or is. Small on purpose: enough to make a golf
# mascot read as golf without pretending to understand every brief.
PROPS: dict[str, tuple[str, ...]] = {
    "golf": ("club", "ball", "cap"),
    "golfer": ("club", "ball", "cap"),
    "coffee": ("cup_body", "steam"),
    "cup": ("cup_body", "steam"),
    "tea": ("cup_body", "steam"),
    "space": ("helmet", "star"),
    "astronaut": ("helmet", "star"),
    "rocket": ("helmet", "star"),
    "fox": ("pointy_ears", "tail"),
    "cat": ("pointy_ears", "tail"),
    "wolf": ("pointy_ears", "tail"),
    "dog": ("round_ears", "tail"),
    "bear": ("round_ears",),
    "panda": ("round_ears",),
    "robot": ("box_body", "antenna"),
    "chef": ("chef_hat",),
    "pizza": ("chef_hat",),
    "music": ("guitar",),
    "guitar": ("guitar",),
    "rock": ("guitar",),
    "soccer": ("ball_in_hand",),
    "basketball": ("ball_in_hand",),
    "tennis": ("ball_in_hand",),
    "king": ("crown",),
    "queen": ("crown",),
    "royal": ("crown",),
}
MOODS = {
    "playful": "wave",
    "fun": "wave",
    "happy": "wave",
    "cheerful": "wave",
    "friendly": "wave",
    "heroic": "hero",
    "brave": "hero",
    "strong": "hero",
    "bold": "hero",
    "epic": "hero",
    "cute": "shy",
    "shy": "shy",
    "sweet": "shy",
    "tiny": "shy",
    "kawaii": "shy",
    "serious": "stand",
    "calm": "stand",
    "grumpy": "stand",
    "cool": "stand",
}


@dataclass(frozen=True)
class Figure:
    exaggeration: float  # 0 subtle … 2 extreme (refinement may push it past)
    pose: str
    props: frozenset[str]
    turn: float = 0.0  # -1 … 1: how far the face is turned (three-quarter view)
    mirror: bool = False
    silhouette: bool = False
    scale: float = 1.0


def figure_for(brief: str, layout: str, exaggeration: str, rng: random.Random) -> Figure:
    words = [w.strip(".,!?;:'\"").lower() for w in brief.split()]
    props = frozenset(p for w in words for p in PROPS.get(w, ()))
    pose = next((MOODS[w] for w in words if w in MOODS), rng.choice(("wave", "stand", "hero")))
    if layout == "dynamic_diagonal_action":
        pose = "run"
    return Figure(
        exaggeration=EXAGGERATION_LEVEL[exaggeration],
        pose=pose,
        props=props,
        turn=rng.choice((-0.45, 0.45)) if layout == "three_quarter_view" else 0.0,
        mirror=rng.random() < 0.5,
        silhouette=layout == "silhouette_thumbnail",
    )


@dataclass
class _Frame:
    """Poses the figure in drawing units: mirrored, leaning (the layout frames it later)."""

    angle: float = 0.0
    mirror: bool = False

    def __call__(self, x: float, y: float) -> Point:
        if self.mirror:
            x = -x
        c, s = math.cos(self.angle), math.sin(self.angle)
        return (x * c - y * s, x * s + y * c)

    def all(self, points: Iterable[Point]) -> list[Point]:
        return [self(x, y) for x, y in points]


@dataclass
class _Body:
    head_r: float
    head_c: Point
    neck_y: float
    hip_y: float
    half_w: float
    shoulders: tuple[Point, Point]
    hips: tuple[Point, Point]
    arm: float
    leg: float
    hands: list[Point] = field(default_factory=list)


def _proportions(f: Figure) -> _Body:
    e = f.exaggeration
    head_d = 0.22 + 0.115 * e  # head takes a quarter of the height, or almost half at extreme
    head_r = head_d / 2
    rest = 1.0 - head_d
    leg = rest * (0.42 - 0.05 * e)
    neck_y, hip_y = -rest, -leg
    half_w = 0.11 + 0.045 * e  # squash: a rounder, wider body as proportions get pushed
    arm = rest * (0.5 + 0.12 * e)  # stretch: longer, bendier limbs
    return _Body(
        head_r=head_r,
        head_c=(0.0, -(1.0 - head_r)),
        neck_y=neck_y,
        hip_y=hip_y,
        half_w=half_w,
        shoulders=((-half_w * 0.85, neck_y + rest * 0.1), (half_w * 0.85, neck_y + rest * 0.1)),
        hips=((-half_w * 0.45, hip_y), (half_w * 0.45, hip_y)),
        arm=arm,
        leg=leg,
    )


# Upper and lower arm angles (radians from straight down, outward positive) per pose.
_ARMS = {
    "wave": ((2.1, 2.6), (0.7, 0.2)),
    "hero": ((0.9, -1.1), (0.9, -1.1)),
    "shy": ((0.25, -0.9), (0.25, -0.9)),
    "stand": ((0.2, 0.05), (0.2, 0.05)),
    "run": ((2.2, 2.6), (-0.9, -0.2)),
    "jump": ((2.4, 2.8), (2.4, 2.8)),
}
_LEGS = {
    "wave": ((0.12, 0.0), (-0.5, 0.3)),
    "hero": ((0.3, 0.25), (0.3, 0.25)),
    "shy": ((0.03, -0.05), (0.03, -0.05)),
    "stand": ((0.08, 0.05), (0.08, 0.05)),
    "run": ((0.8, -0.4), (-0.7, 0.5)),
    "jump": ((0.7, -0.9), (0.7, -0.9)),
}
# Words a refinement instruction uses for a pose (besides the moods).
POSES = {
    "run": "run",
    "running": "run",
    "jump": "jump",
    "jumping": "jump",
    "leap": "jump",
    "arms up": "jump",
    "wave": "wave",
    "waving": "wave",
    "standing": "stand",
    "stand still": "stand",
    "hands on hips": "hero",
    "confident": "hero",
}


def _limb(start: Point, length: float, angles: tuple[float, float], side: int) -> list[Point]:
    a1, a2 = angles
    half = length / 2
    elbow = (start[0] + side * half * math.sin(a1), start[1] + half * math.cos(a1))
    end = (elbow[0] + side * half * math.sin(a2), elbow[1] + half * math.cos(a2))
    return [start, elbow, end]


def _draw_face(pen: Pen, frame: _Frame, b: _Body, f: Figure) -> None:
    hx, hy = b.head_c
    r = b.head_r
    shift = f.turn * r * 0.6
    eye_dx, eye_y = r * 0.36, hy - r * 0.05
    eye_r = r * (0.09 + 0.03 * f.exaggeration)
    for side in (-1, 1):
        x = hx + shift + side * eye_dx * (1 - 0.35 * abs(f.turn) * (side * f.turn > 0))
        ex, ey = frame(x, eye_y)
        if f.pose == "shy":
            pen.stroke(
                frame.all(arc_points(x, eye_y + r * 0.05, r * 0.1, math.pi, 2 * math.pi)),
                weight=0.75,
            )
        else:
            pen.dot(ex, ey, eye_r)
        if f.pose in {"hero", "stand"}:  # brows make a face determined
            pen.stroke(
                frame.all(
                    [
                        (x - r * 0.14, eye_y - r * 0.28 + side * r * 0.04),
                        (x + r * 0.14, eye_y - r * 0.28 - side * r * 0.04),
                    ]
                ),
                weight=0.75,
            )
    mouth_r = r * (0.28 + 0.08 * f.exaggeration)
    mouth_y = hy + r * 0.28
    if f.pose in {"wave", "run"}:  # an open grin
        grin = arc_points(
            hx + shift, mouth_y - mouth_r * 0.3, mouth_r, 0.15 * math.pi, 0.85 * math.pi
        )
        pen.shape(frame.all([*grin, grin[0]]), weight=0.8)
    else:
        pen.stroke(
            frame.all(
                arc_points(
                    hx + shift,
                    mouth_y - mouth_r * 0.5,
                    mouth_r * 0.8,
                    0.25 * math.pi,
                    0.75 * math.pi,
                )
            ),
            weight=0.8,
        )


def _head(pen: Pen, frame: _Frame, b: _Body, f: Figure) -> None:
    hx, hy = b.head_c
    r = b.head_r
    if "box_body" in f.props:
        box = [
            (hx - r, hy - r * 0.9),
            (hx + r, hy - r * 0.9),
            (hx + r, hy + r * 0.9),
            (hx - r, hy + r * 0.9),
            (hx - r, hy - r * 0.9),
        ]
        _outline(pen, frame, box, f)
    else:
        _outline(pen, frame, ellipse_points(hx, hy, r * (1 - 0.12 * abs(f.turn)), r, start=-1.2), f)
    if "pointy_ears" in f.props:
        for side in (-1, 1):
            ear = [
                (hx + side * r * 0.35, hy - r * 0.85),
                (hx + side * r * 0.8, hy - r * 1.6),
                (hx + side * r * 0.9, hy - r * 0.45),
            ]
            _outline(pen, frame, ear, f, closed=False)
    if "round_ears" in f.props:
        for side in (-1, 1):
            _outline(
                pen,
                frame,
                ellipse_points(hx + side * r * 0.75, hy - r * 0.8, r * 0.32, r * 0.32),
                f,
            )
    if "cap" in f.props:
        # A dome over the top of the head with the brim at the forehead, above the eyes.
        band = hy - r * 0.4
        dome = ellipse_points(hx, band, r * 0.93, r * 0.62, start=math.pi, sweep=math.pi, steps=20)
        _outline(pen, frame, [*dome, dome[0]], f)
        brim_side = -1 if f.turn < 0 else 1
        brim = [(hx + brim_side * r * 0.2, band), (hx + brim_side * r * 1.55, band + r * 0.08)]
        pen.stroke(frame.all(brim), weight=1.3)
        pen.dot(*frame(hx, band - r * 0.64), r * 0.08)
    if "chef_hat" in f.props:
        for dx in (-0.5, 0.0, 0.5):
            _outline(pen, frame, ellipse_points(hx + dx * r, hy - r * 1.45, r * 0.45, r * 0.4), f)
    if "crown" in f.props:
        top = hy - r * 0.95
        crown = [
            (hx - r * 0.6, top),
            (hx - r * 0.6, top - r * 0.6),
            (hx - r * 0.3, top - r * 0.3),
            (hx, top - r * 0.7),
            (hx + r * 0.3, top - r * 0.3),
            (hx + r * 0.6, top - r * 0.6),
            (hx + r * 0.6, top),
        ]
        _outline(pen, frame, crown, f, closed=False)
    if "helmet" in f.props:
        pen.shape(frame.all(ellipse_points(hx, hy, r * 1.4, r * 1.35)), weight=0.8)
    if "antenna" in f.props or "helmet" in f.props:
        pen.stroke(
            frame.all(
                [
                    (hx, hy - r * (1.35 if "helmet" in f.props else 0.9)),
                    (hx + r * 0.2, hy - r * 1.9),
                ]
            ),
            weight=0.8,
        )
        tip = frame(hx + r * 0.2, hy - r * 1.95)
        pen.dot(*tip, r * 0.12)
    if not f.silhouette:
        _draw_face(pen, frame, b, f)


def _outline(
    pen: Pen, frame: _Frame, points: list[Point], f: Figure, *, closed: bool = True
) -> None:
    mapped = frame.all(points)
    if closed:
        pen.shape(mapped)
    else:
        pen.stroke(mapped)


def _body(pen: Pen, frame: _Frame, b: _Body, f: Figure) -> None:
    top, bottom = b.neck_y, b.hip_y
    cy = (top + bottom) / 2
    height = bottom - top
    if "cup_body" in f.props:
        w = b.half_w * 1.25
        cup = [(-w, top), (w, top), (w * 0.75, bottom), (-w * 0.75, bottom), (-w, top)]
        _outline(pen, frame, cup, f)
        handle = arc_points(w * 0.95, cy, height * 0.25, -math.pi / 2, math.pi / 2)
        _outline(pen, frame, handle, f, closed=False)
    elif "box_body" in f.props:
        w = b.half_w * 1.1
        _outline(pen, frame, [(-w, top), (w, top), (w, bottom), (-w, bottom), (-w, top)], f)
    else:
        # Turned three-quarters, the body shows its narrower side, and a centre line (the
        # front of the chest) curves round to the side it faces.
        half_w = b.half_w * (1 - 0.3 * abs(f.turn))
        cx = -f.turn * b.half_w * 0.2
        _outline(pen, frame, ellipse_points(cx, cy, half_w, height / 2 * 1.05, start=-1.9), f)
        if f.turn and not f.silhouette:
            front = ellipse_points(
                cx, cy, half_w * abs(f.turn), height * 0.4, start=-1.1, sweep=2.2, steps=12
            )
            if f.turn < 0:
                front = [(2 * cx - x, y) for x, y in front]
            pen.stroke(frame.all(front), weight=0.75)
    if "tail" in f.props:
        tail = [
            (b.half_w * 0.8, bottom - height * 0.1),
            (b.half_w * 1.8, bottom - height * 0.3),
            (b.half_w * 2.2, bottom - height * 0.9),
        ]
        _outline(pen, frame, tail, f, closed=False)


def _limbs(pen: Pen, frame: _Frame, b: _Body, f: Figure) -> None:
    # Exaggeration pushes the pose as well as the proportions: wider swings, bigger gestures.
    swing = 1.0 + 0.18 * f.exaggeration
    arms, legs = _ARMS[f.pose], _LEGS[f.pose]
    for side, shoulder, angles in ((-1, b.shoulders[0], arms[0]), (1, b.shoulders[1], arms[1])):
        # Held below straight up, so a pushed wave never crosses the head.
        upper = max(-2.6, min(2.6, angles[0] * swing))
        limb = _limb(shoulder, b.arm, (upper, max(-2.9, min(2.9, angles[1] * swing))), side)
        pen.stroke(frame.all(limb))
        b.hands.append(limb[-1])
        hand_r = b.arm * 0.075
        pen.shape(frame.all(ellipse_points(*limb[-1], hand_r, hand_r, steps=20)))
    for side, hip, angles in ((-1, b.hips[0], legs[0]), (1, b.hips[1], legs[1])):
        limb = _limb(hip, b.leg, (angles[0] * swing, angles[1] * swing), side)
        pen.stroke(frame.all(limb))
        fx, fy = limb[-1]
        pen.stroke(
            frame.all([(fx - side * b.leg * 0.05, fy), (fx + side * b.leg * 0.22, fy)]),
            weight=1.2,
            smooth=False,
        )


def _props(pen: Pen, frame: _Frame, b: _Body, f: Figure) -> None:
    hand = b.hands[1] if b.hands else (b.half_w, b.hip_y)
    if "club" in f.props:
        head = (hand[0] + 0.28, -0.01)
        pen.stroke(frame.all([hand, head]), weight=0.8)
        pen.stroke(frame.all([head, (head[0] + 0.07, head[1] + 0.005)]), weight=1.5)
    if "ball" in f.props:
        _outline(pen, frame, ellipse_points(hand[0] + 0.45, -0.03, 0.03, 0.03), f)
    if "ball_in_hand" in f.props:
        _outline(pen, frame, ellipse_points(b.hands[0][0], b.hands[0][1] - 0.07, 0.07, 0.07), f)
    if "guitar" in f.props:
        cx, cy = 0.0, (b.neck_y + b.hip_y) / 2 + 0.05
        _outline(pen, frame, ellipse_points(cx - 0.05, cy + 0.05, 0.11, 0.09, rotation=-0.6), f)
        pen.stroke(frame.all([(cx, cy), (cx + 0.3, cy - 0.25)]), weight=0.9)
    if "steam" in f.props:
        for dx in (-0.06, 0.06):
            wave = [
                (dx + 0.025 * math.sin(i * 1.3), b.head_c[1] - b.head_r * 1.2 - i * 0.03)
                for i in range(6)
            ]
            pen.stroke(frame.all(wave), weight=0.75)
    if "star" in f.props:
        sx, sy = 0.45, -0.95
        star = [
            (
                sx + 0.06 * math.cos(a) * (1 if i % 2 == 0 else 0.45),
                sy + 0.06 * math.sin(a) * (1 if i % 2 == 0 else 0.45),
            )
            for i, a in enumerate(-math.pi / 2 + k * math.pi / 5 for k in range(11))
        ]
        _outline(pen, frame, star, f, closed=False)


# Inside these margins (a share of each side) nothing is drawn: the style guard's border is
# 5 % of each side and must stay paper; the rest leaves room for a stroke's width and wobble.
MARGIN = 0.08


def _place(
    bounds: tuple[float, float, float, float],
    box: tuple[float, float, float, float],
    anchor: Point,
) -> Placement:
    """The largest placement of ``bounds`` inside ``box``; spare room split by ``anchor``."""
    bx0, by0, bx1, by1 = bounds
    x0, y0, x1, y1 = box
    scale = min((x1 - x0) / max(bx1 - bx0, 1e-6), (y1 - y0) / max(by1 - by0, 1e-6))
    spare_x, spare_y = (x1 - x0) - scale * (bx1 - bx0), (y1 - y0) - scale * (by1 - by0)
    return Placement(
        scale, (x0 + spare_x * anchor[0] - scale * bx0, y0 + spare_y * anchor[1] - scale * by0)
    )


def _shrink(
    box: tuple[float, float, float, float], factor: float, anchor: Point
) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = box
    w, h = (x1 - x0) * factor, (y1 - y0) * factor
    left, top = x0 + (x1 - x0 - w) * anchor[0], y0 + (y1 - y0 - h) * anchor[1]
    return left, top, left + w, top + h


def _bounds_above(pen: Pen, clip: float) -> tuple[float, float, float, float]:
    """The bounds of what is drawn above ``clip``, including where lines are cut by it."""
    points = [p for m in pen.marks for run in clip_runs(list(m.points), clip) for p in run]
    xs, ys = [x for x, _ in points], [y for _, y in points]
    return min(xs), min(ys), max(xs), clip


def render(
    f: Figure, layout: str, size: tuple[int, int], rng: random.Random, *, stroke_px: float
) -> Image.Image:
    """The figure drawn and framed by ``layout`` on a white canvas of ``size``."""
    width, height = size
    pad = stroke_px * 1.5
    inner = (
        width * MARGIN + pad,
        height * MARGIN + pad,
        width * (1 - MARGIN) - pad,
        height * (1 - MARGIN) - pad,
    )
    frame = _Frame(angle=-0.38 if layout == "dynamic_diagonal_action" else 0.0, mirror=f.mirror)
    pen = Pen()
    body = _proportions(f)
    _limbs(pen, frame, body, f)
    _body(pen, frame, body, f)
    _head(pen, frame, body, f)
    _props(pen, frame, body, f)
    bx0, by0, bx1, by1 = pen.bounds()
    tall = by1 - by0
    if layout not in {"close_up", "silhouette_thumbnail"}:
        pen.stroke([(bx0 - 0.08 * tall, by1 + 0.01), (bx1 + 0.1 * tall, by1 + 0.012)], weight=0.8)
    if layout == "dynamic_diagonal_action":
        # The figure leans into its run; speed lines trail on the side it leaves.
        # (Mirroring happens before the lean, so the figure always leans left.)
        for i, share in enumerate((0.3, 0.48, 0.66)):
            y, start = by0 + share * tall, bx1 + 0.04 * tall
            pen.stroke([(start, y), (start + (0.32 - 0.06 * i) * tall, y)], weight=0.8)
    bounds = pen.bounds()
    clip: float | None = None
    if layout == "close_up":
        # Head and shoulders, cut at the chest.
        clip = body.neck_y + (body.hip_y - body.neck_y) * 0.45
    if f.scale > 1.0:  # zoom in: the camera closes in from the top of the figure
        top = bounds[1]
        clip = top + ((clip if clip is not None else bounds[3]) - top) / f.scale
    if clip is not None:
        bounds = _bounds_above(pen, clip)
    anchors = {
        "centered_full_figure": (0.5, 0.6),
        "three_quarter_view": (0.3, 0.6),
        "close_up": (0.5, 1.0),
        "dynamic_diagonal_action": (0.45, 0.5),
        "off_center_negative_space": (0.5, 1.0),
        "silhouette_thumbnail": (0.5, 0.8),
    }
    anchor = anchors[layout]
    box, border = inner, None
    if layout == "off_center_negative_space":
        x0, y0, x1, y1 = inner
        left = rng.random() < 0.5
        box_w = (x1 - x0) * 0.42
        low = y0 + (y1 - y0) * 0.3
        box = (x0, low, x0 + box_w, y1) if left else (x1 - box_w, low, x1, y1)
    if layout == "silhouette_thumbnail":
        border = _shrink(inner, 0.86, (0.5, 0.5))
        box = _shrink(border, 0.8, (0.5, 0.6))
    if f.scale < 1.0:
        box = _shrink(box, f.scale, anchor)
    placement = _place(bounds, box, anchor)
    if clip is not None:
        clip_px = placement.offset[1] + placement.scale * clip
        placement = Placement(placement.scale, placement.offset, clip_px)
    if layout == "off_center_negative_space":
        # A horizon across the empty side: the space the figure is placed against.
        ground = by1 + 0.011
        far = inner[2] if box[0] == inner[0] else inner[0]
        ox, scale = placement.offset[0], placement.scale
        near = ((box[0] + box[2]) / 2 - ox) / scale
        pen.stroke([(near, ground), ((far - ox) / scale, ground - 0.004)], weight=0.8)
    return ink(
        pen.marks,
        size,
        placement,
        stroke_px=stroke_px,
        rng=rng,
        silhouette=f.silhouette,
        frame=border,
    )


def refine_figure(f: Figure, instruction: str) -> tuple[Figure, bool]:
    """Apply a plain-words change; returns the figure and whether any rule matched."""
    text = instruction.lower()
    changed = f
    if "more" in text and ("exaggerat" in text or "extreme" in text or "cartoon" in text):
        changed = replace(changed, exaggeration=changed.exaggeration + 1.0)
    if ("less" in text and "exaggerat" in text) or "subtle" in text or "realistic" in text:
        changed = replace(changed, exaggeration=max(0.0, changed.exaggeration - 1.0))
    if "left" in text:
        changed = replace(changed, turn=-0.5, mirror=False)
    if "right" in text:
        changed = replace(changed, turn=0.5, mirror=False)
    if any(w in text for w in ("bigger", "larger", "zoom in", "closer")):
        changed = replace(changed, scale=changed.scale * 1.5)
    if any(w in text for w in ("smaller", "zoom out", "further", "farther", "wider")):
        changed = replace(changed, scale=changed.scale * 0.7)
    for word, props in PROPS.items():
        if f"add {word}" in text or f"add a {word}" in text or f"with {word}" in text:
            changed = replace(changed, props=changed.props | set(props))
    for word, pose in {**MOODS, **POSES}.items():
        if word in text:
            changed = replace(changed, pose=pose)
    return changed, changed != f
