"""The style guard: how much of an off-style corpus it delivers, and what it costs."""

from __future__ import annotations

import contextlib
import io
import time
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from bench.common import ROOT, median
from sketchgen.errors import OffStyleError
from sketchgen.finish import finish_sketch_with_qa, guard_sketch, measure
from tests.helpers.corpus import FRAGMENTARY, HOPELESS, OFF_STYLE
from tests.helpers.fakes import drawing_png

RUNS = 5
SIZES = {"1K": 1024, "4K": 4096}


def _baseline(data: bytes) -> bytes:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("L").save(buffer, format="PNG")
    return buffer.getvalue()


def _refused(data: bytes, size: str) -> None:
    with contextlib.suppress(OffStyleError):
        guard_sketch(data, size)


def _time(fn: Any, *args: Any) -> float:
    samples = []
    for _ in range(RUNS):
        start = time.perf_counter()
        fn(*args)
        samples.append(time.perf_counter() - start)
    return median(samples)


def _at(data: bytes, px: int) -> bytes:
    """The picture as a model would return it at that size (PNG, RGB)."""
    image = Image.open(io.BytesIO(data)).convert("RGB").resize((px, px), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


SHEET = ROOT / "docs" / "style-guard-contact-sheet.png"
_TILE = 220


def _tile(image: Image.Image, caption: str) -> Image.Image:
    tile = Image.new("RGB", (_TILE, _TILE + 18), "white")
    image = image.convert("RGB")
    image.thumbnail((_TILE - 4, _TILE - 4), Image.Resampling.LANCZOS)
    tile.paste(image, ((_TILE - image.width) // 2, (_TILE - image.height) // 2))
    ImageDraw.Draw(tile).text((4, _TILE + 2), caption, fill=(150, 0, 0))
    return tile


def _contact_sheet(rows: list[tuple[Image.Image, Image.Image, Image.Image | None, str]]) -> None:
    """Per picture: what the model returned, the finisher alone, what the guard delivers."""
    per_row, gap = 2, 12
    width = per_row * (3 * _TILE + gap)
    height = ((len(rows) + per_row - 1) // per_row) * (_TILE + 18 + gap)
    sheet = Image.new("RGB", (width, height), (190, 190, 190))
    for i, (original, finished, delivered, name) in enumerate(rows):
        x, y = (i % per_row) * (3 * _TILE + gap), (i // per_row) * (_TILE + 18 + gap)
        sheet.paste(_tile(original, name), (x, y))
        sheet.paste(_tile(finished, "finisher alone"), (x + _TILE, y))
        blank = Image.new("L", (8, 8), 255)
        label = "guard: line art" if delivered is not None else "guard: OFF_STYLE"
        sheet.paste(_tile(delivered or blank, label), (x + 2 * _TILE, y))
    sheet.save(SHEET, optimize=True)


def run() -> dict[str, Any]:
    corpus = []
    rows = []
    for name, load in {**OFF_STYLE, **HOPELESS}.items():
        data = load()
        finished, before = finish_sketch_with_qa(data)
        delivered = None
        try:
            png, qa = guard_sketch(data)
            passed = measure(np.asarray(Image.open(io.BytesIO(png)))).passed
            outcome = qa.converted or "as finished"
            delivered = Image.open(io.BytesIO(png))
        except OffStyleError:
            passed, outcome = False, "refused"
        rows.append(
            (Image.open(io.BytesIO(data)), Image.open(io.BytesIO(finished)), delivered, name)
        )
        corpus.append(
            {
                "name": name,
                "hopeless": name in HOPELESS,
                "passed_before": before.passed,
                "outcome": outcome,
                "passes_after": passed,
                "fragmentary": name in FRAGMENTARY,
            }
        )
    _contact_sheet(rows)
    off_style = [c for c in corpus if not c["hopeless"]]
    sizes = {}
    for size, px in SIZES.items():
        photo = _at(OFF_STYLE["portrait"](), px)
        line_art = _at(drawing_png(1024, 1024, seed=1), px)
        noise = _at(HOPELESS["pure-noise"](), px)
        sizes[size] = {
            "baseline_s": round(_time(_baseline, photo), 4),
            "baseline_clean_s": round(_time(_baseline, line_art), 4),
            "clean_s": round(_time(guard_sketch, line_art, size), 4),
            "converted_s": round(_time(guard_sketch, photo, size), 4),
            "refused_s": round(_time(_refused, noise, size), 4),
        }
    return {
        "runs": RUNS,
        "corpus": corpus,
        "off_style": len(off_style),
        "passed_before": sum(c["passed_before"] for c in off_style),
        "delivered": sum(c["outcome"] != "refused" for c in off_style),
        "fragmentary": sum(c["fragmentary"] for c in off_style),
        "fragmentary_refused": sum(
            c["fragmentary"] and c["outcome"] == "refused" for c in off_style
        ),
        "passes_after": sum(c["passes_after"] for c in off_style),
        "hopeless_refused": sum(c["outcome"] == "refused" for c in corpus if c["hopeless"]),
        "hopeless": len(corpus) - len(off_style),
        "sizes": sizes,
    }


def markdown(results: dict[str, Any]) -> str:
    n = results["off_style"]
    lines = [
        f"Corpus: {n} off-style pictures the project does not draw — scikit-image's sample "
        "photographs (portrait, cup, cameraman, cat, rocket, coins, clock, text, the horse "
        "silhouette white on black) and renders from `tests/helpers/corpus.py` (shaded noisy "
        "sphere, textured illustration, inverted silhouette, colour gradients on a dark "
        "ground) — plus 2 hopeless ones (pure noise, all black). 1K, 1:1. Contact sheet: "
        "`docs/style-guard-contact-sheet.png`.",
        "",
        "| measure | result | target |",
        "|---|---|---|",
        f"| meeting the rules as finished (before the guard) | {results['passed_before']} of {n} "
        "| — |",
        f"| delivered after the guard (redrawn as line art) | {results['delivered']} of {n} "
        f"({results['delivered'] / n:.0%}) | the {n - results.get('fragmentary', 0)} with "
        "coherent shapes |",
        f"| fragmentary pictures refused (scattered dashes: cat, clock, textured wash) | "
        f"{results.get('fragmentary_refused', 0)} of {results.get('fragmentary', 0)} | all |",
        f"| delivered images meeting the rules | {results['passes_after']} of "
        f"{results['delivered']} | all |",
        f"| hopeless pictures refused (`OFF_STYLE`, then one stricter request) | "
        f"{results['hopeless_refused']} of {results['hopeless']} | all |",
        "",
        f"Time per image, median of {results['runs']} runs, input a PNG at the output size. "
        "Baseline: `Image.open → convert('L') → save PNG` of the same input. *Clean*: line art "
        "that passes as finished (finish + measure, no redraw); *converted*: the portrait "
        "photograph redrawn; *refused*: pure noise (finish, redraw, refuse).",
        "",
        "| size | clean (baseline) | converted photo (baseline) | refused noise |",
        "|---|---|---|---|",
    ]
    for size, row in results["sizes"].items():
        ms = {k: v * 1000 for k, v in row.items()}
        lines.append(
            f"| {size} | {ms['clean_s']:.0f} ms ({ms['baseline_clean_s']:.0f} ms, "
            f"{row['clean_s'] / row['baseline_clean_s']:.1f}×) | {ms['converted_s']:.0f} ms "
            f"({ms['baseline_s']:.0f} ms, {row['converted_s'] / row['baseline_s']:.1f}×) | "
            f"{ms['refused_s']:.0f} ms |"
        )
    return "\n".join(lines)
