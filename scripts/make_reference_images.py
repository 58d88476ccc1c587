"""Draw the demo styles' reference images and write their style.json files.

The references are the project's own work, drawn with the offline model's pen, so the demo
styles carry no third-party images. Deterministic: re-running rewrites identical files.

    .venv/bin/python scripts/make_reference_images.py
"""

from __future__ import annotations

import hashlib
import io
import json
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from sketchgen.generate._figure import figure_for, render

ROOT = Path(__file__).resolve().parents[1] / "lib" / "sketchgen" / "styles" / "data"
SIZE = 512


@dataclass(frozen=True)
class Ref:
    name: str
    brief: str
    layout: str
    exaggeration: str
    tags: tuple[str, ...]
    description: str
    shaded: bool = False  # an off-brand study, listed under do_not_use


@dataclass(frozen=True)
class StyleSpec:
    id: str
    name: str
    description: str
    visual_rules: tuple[str, ...]
    pen_width: float  # px at 1K (the references are drawn at SIZE, twice as heavy)
    refs: tuple[Ref, ...]
    duplicate: tuple[str, str] | None = None  # (existing name, copy name)


STYLES = (
    StyleSpec(
        id="loose-ink-mascot",
        name="Loose ink mascot",
        description="Bold, loose brush-pen ink for friendly mascots and characters.",
        visual_rules=(
            "Loose, confident ink lines with thick 6-10 px outlines, drawn quickly",
            "Rounded, bouncy mascot proportions with a big readable head",
            "Simple dot eyes and a clear expression; no interior shading",
            "One character, no scenery beyond a ground line",
        ),
        pen_width=10.0,
        refs=(
            Ref(
                "golf-mascot",
                "playful golf mascot",
                "centered_full_figure",
                "moderate",
                ("golf", "mascot", "sports", "character"),
                "waving golfer mascot with cap and club",
            ),
            Ref(
                "coffee-cup",
                "cute coffee cup character",
                "three_quarter_view",
                "moderate",
                ("coffee", "food", "mascot", "character"),
                "coffee cup character with steam",
            ),
            Ref(
                "space-fox",
                "heroic space fox",
                "centered_full_figure",
                "extreme",
                ("space", "fox", "animal", "hero"),
                "fox astronaut, hands on hips",
            ),
            Ref(
                "bear-head",
                "cute bear",
                "close_up",
                "moderate",
                ("bear", "animal", "head", "mascot"),
                "bear mascot head, close-up",
            ),
            Ref(
                "robot-action",
                "playful robot",
                "dynamic_diagonal_action",
                "extreme",
                ("robot", "action", "pose", "character"),
                "running robot, diagonal action",
            ),
            Ref(
                "chef-mascot",
                "happy chef mascot",
                "off_center_negative_space",
                "subtle",
                ("chef", "food", "mascot"),
                "small chef in lots of white space",
            ),
            Ref(
                "shaded-study",
                "serious golf mascot",
                "centered_full_figure",
                "subtle",
                ("golf", "mascot", "shaded"),
                "hatched, shaded study: off-brand",
                shaded=True,
            ),
        ),
        duplicate=("golf-mascot", "golf-mascot-copy"),
    ),
    StyleSpec(
        id="pencil-thumbnail",
        name="Pencil thumbnails",
        description="Rough graphite gesture thumbnails: light doubled strokes, quick poses.",
        visual_rules=(
            "Rough pencil gesture lines, each stroke doubled or tripled",
            "Quick thumbnail energy: pose and silhouette before detail",
            "Thin-to-medium lines (3-5 px), no fills except silhouettes",
            "Minimal faces; shapes and action lines carry the idea",
        ),
        pen_width=3.5,
        refs=(
            Ref(
                "gesture-golfer",
                "playful golfer",
                "dynamic_diagonal_action",
                "moderate",
                ("golf", "action", "pose", "sports"),
                "golfer mid-swing gesture",
            ),
            Ref(
                "silhouette-fox",
                "fox",
                "silhouette_thumbnail",
                "moderate",
                ("fox", "animal", "silhouette"),
                "fox silhouette thumbnail",
            ),
            Ref(
                "three-quarter-chef",
                "chef",
                "three_quarter_view",
                "subtle",
                ("chef", "food", "character"),
                "chef, three-quarter view",
            ),
            Ref(
                "rocket-kid",
                "heroic astronaut",
                "centered_full_figure",
                "extreme",
                ("space", "astronaut", "hero", "character"),
                "astronaut kid, extreme proportions",
            ),
            Ref(
                "guitar-cat",
                "playful music cat",
                "off_center_negative_space",
                "moderate",
                ("music", "cat", "animal"),
                "cat with guitar, off-centre",
            ),
            Ref(
                "shaded-portrait",
                "serious bear",
                "close_up",
                "subtle",
                ("bear", "head", "shaded"),
                "tonal portrait study: off-brand",
                shaded=True,
            ),
        ),
    ),
    StyleSpec(
        # The seed's own example style: StyleRegistry().get_style("vintage-mascot").
        id="vintage-mascot",
        name="Vintage mascot",
        description="1930s rubber-hose cartoon mascots: steady round-nib ink, pie-cut eyes.",
        visual_rules=(
            "Steady, even ink lines with a round nib, 5-8 px outlines, no wobble",
            "Rubber-hose limbs, round heads and big gloved hands, old cartoon proportions",
            "Pie-cut eyes and a wide grin; flat black shapes, no grey tones or hatching",
            "One character, centred, with a simple ground shadow line",
        ),
        pen_width=7.0,
        refs=(
            Ref(
                "rubber-hose-golfer",
                "playful golf mascot",
                "centered_full_figure",
                "extreme",
                ("golf", "mascot", "vintage", "character"),
                "rubber-hose golfer mascot tipping his cap",
            ),
            Ref(
                "diner-coffee-cup",
                "cheerful coffee cup character",
                "three_quarter_view",
                "moderate",
                ("coffee", "food", "mascot", "vintage"),
                "diner coffee cup mascot, three-quarter view",
            ),
            Ref(
                "marching-bear",
                "marching bear mascot",
                "dynamic_diagonal_action",
                "extreme",
                ("bear", "animal", "action", "mascot"),
                "bear mascot marching, diagonal stride",
            ),
            Ref(
                "grinning-cat-head",
                "grinning cat",
                "close_up",
                "moderate",
                ("cat", "animal", "head", "mascot"),
                "grinning cat head, close-up",
            ),
            Ref(
                "gas-station-robot",
                "friendly robot mascot",
                "off_center_negative_space",
                "subtle",
                ("robot", "mascot", "vintage"),
                "small robot mascot with plenty of space around it",
            ),
            Ref(
                "toned-poster",
                "vintage golf mascot",
                "centered_full_figure",
                "moderate",
                ("golf", "mascot", "shaded"),
                "toned, hatched poster study: off-brand",
                shaded=True,
            ),
        ),
    ),
)


def _draw(style: StyleSpec, ref: Ref) -> bytes:
    seed = int.from_bytes(hashlib.sha256(f"{style.id}/{ref.name}".encode()).digest()[:8], "big")
    rng = random.Random(seed)
    scale = SIZE / 1024
    figure = figure_for(ref.brief, ref.layout, ref.exaggeration, rng)
    canvas = render(figure, ref.layout, (SIZE, SIZE), rng, stroke_px=style.pen_width * scale * 2)
    draw = ImageDraw.Draw(canvas)
    if ref.shaded:
        # Diagonal hatching and a grey wash: exactly what the style must not imitate.
        for x in range(-SIZE, SIZE, 9):
            draw.line([(x, SIZE), (x + SIZE, 0)], fill=150, width=2)
        canvas = Image.blend(canvas, Image.new("L", canvas.size, 200), 0.25)
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def main() -> None:
    for style in STYLES:
        folder = ROOT / style.id
        (folder / "references").mkdir(parents=True, exist_ok=True)
        entries = []
        for ref in style.refs:
            rel = f"references/{ref.name}.png"
            (folder / rel).write_bytes(_draw(style, ref))
            entries.append({"file": rel, "tags": list(ref.tags), "description": ref.description})
        if style.duplicate:
            # The same bytes under a second name: the registry keeps one (SHA-256 dedupe).
            original, copy = style.duplicate
            rel = f"references/{copy}.png"
            (folder / rel).write_bytes((folder / f"references/{original}.png").read_bytes())
            entries.append({"file": rel, "tags": ["golf", "mascot"], "description": "duplicate"})
        document = {
            "id": style.id,
            "name": style.name,
            "description": style.description,
            "visual_rules": list(style.visual_rules),
            "references": entries,
            "do_not_use": [f"references/{r.name}.png" for r in style.refs if r.shaded],
        }
        (folder / "style.json").write_text(json.dumps(document, indent=2) + "\n")
        print(f"{style.id}: {len(entries)} references")


if __name__ == "__main__":
    main()
