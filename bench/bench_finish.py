"""The finisher against a plain decode + grayscale re-encode of the same PNG."""

from __future__ import annotations

import io
import time
from typing import Any

from PIL import Image

from bench.common import median
from sketchgen.finish import finish_sketch
from tests.helpers.images import offspec_drawing

RUNS = 7
SIZES = {"1K": 1024, "2K": 2048, "4K": 4096}


def _baseline(data: bytes) -> bytes:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("L").save(buffer, format="PNG")
    return buffer.getvalue()


def _time(fn: Any, data: bytes, *args: str) -> float:
    samples = []
    for _ in range(RUNS):
        start = time.perf_counter()
        fn(data, *args)
        samples.append(time.perf_counter() - start)
    return median(samples)


def run() -> dict[str, Any]:
    rows = {}
    for size, px in SIZES.items():
        data = offspec_drawing(px, px, seed=1)
        baseline = _time(_baseline, data)
        finish = _time(finish_sketch, data, size, "1:1")
        rows[size] = {
            "baseline_s": round(baseline, 4),
            "finish_s": round(finish, 4),
            "ratio": round(finish / baseline, 2),
        }
    return {"runs": RUNS, "sizes": rows}


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"Input: an off-spec colour drawing on a grey gradient with 2 % speckle, PNG, at the "
        f"output size; median of {results['runs']} runs. Baseline: `Image.open → convert('L') "
        f"→ save PNG` (Pillow defaults). Target: ratio ≤ 1.0 at 1K and 4K (issue 28).",
        "",
        "| size | baseline | finish_sketch | ratio |",
        "|---|---|---|---|",
    ]
    for size, row in results["sizes"].items():
        baseline, finish = row["baseline_s"] * 1000, row["finish_s"] * 1000
        lines.append(f"| {size} | {baseline:.0f} ms | {finish:.0f} ms | {row['ratio']:.2f}× |")
    return "\n".join(lines)
