"""Library modes against the Gemini-protocol server at model latency L, 6 sketches.

Wall time and time to first sketch, per mode; the real google-genai SDK path end to end
(prompt → SDK → HTTP → finisher → PNG + metadata on disk).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import median
from sketchgen.generate import GenerationConfig, ImageGenerator, NanoBananaAdapter, RetryPolicy
from sketchgen.prompt import PromptCompiler
from sketchgen.references import ImageRetriever
from sketchgen.styles import StyleRegistry
from sketchgen.testing.gemini_server import FakeGeminiServer

LATENCY_S = 2.0
SKETCHES = 6
RUNS = 3


def _job(output: Path) -> dict[str, Any]:
    style = StyleRegistry().get_style("loose-ink-mascot")
    spec = PromptCompiler().compile("playful golf mascot", style)
    return {
        "prompt_spec": spec,
        "retrieval_result": ImageRetriever().retrieve(spec, style, top_k=3),
        "style": style,
        "config": GenerationConfig(num_images=SKETCHES, seed=3, output_dir=output),
    }


def _timed_sync(
    generator: ImageGenerator, job: dict[str, Any], streaming: bool
) -> tuple[float, float]:
    start = time.perf_counter()
    first = None
    if streaming:
        for _ in generator.generate_streaming(**job):
            first = first or time.perf_counter() - start
    else:
        generator.generate(**job)
    return time.perf_counter() - start, first or float("nan")


async def _timed_async(
    generator: ImageGenerator, job: dict[str, Any], streaming: bool
) -> tuple[float, float]:
    start = time.perf_counter()
    first = None
    if streaming:
        async for _ in generator.generate_streaming_async(**job):
            first = first or time.perf_counter() - start
    else:
        await generator.generate_async(**job)
    return time.perf_counter() - start, first or float("nan")


def run() -> dict[str, Any]:
    results: dict[str, Any] = {
        "latency_s": LATENCY_S,
        "sketches": SKETCHES,
        "runs": RUNS,
        "modes": {},
    }
    with FakeGeminiServer(latency_s=LATENCY_S) as server, tempfile.TemporaryDirectory() as tmp:
        generator = ImageGenerator(
            NanoBananaAdapter("bench-key", base_url=server.url), retry=RetryPolicy(max_attempts=1)
        )
        job = _job(Path(tmp))
        _timed_sync(generator, job, streaming=False)  # warm the client and the styles
        modes = {
            "generate (threads)": lambda: _timed_sync(generator, job, False),
            "generate_async": lambda: asyncio.run(_timed_async(generator, job, False)),
            "generate_streaming": lambda: _timed_sync(generator, job, True),
            "generate_streaming_async": lambda: asyncio.run(_timed_async(generator, job, True)),
        }
        for name, measure in modes.items():
            samples = [measure() for _ in range(RUNS)]
            results["modes"][name] = {
                "wall_s": round(median([s[0] for s in samples]), 3),
                "first_sketch_s": round(median([s[1] for s in samples]), 3)
                if "stream" in name
                else None,
            }
    return results


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"Model latency L = {results['latency_s']} s, {results['sketches']} sketches, median of "
        f"{results['runs']} runs. Target: wall ≤ L + 0.5 s, first sketch ≤ L + 0.3 s.",
        "",
        "| mode | wall time | first sketch |",
        "|---|---|---|",
    ]
    for name, row in results["modes"].items():
        first = (
            f"{row['first_sketch_s']:.2f} s"
            if row["first_sketch_s"] is not None
            else "— (returns at the end)"
        )
        lines.append(f"| {name} | {row['wall_s']:.2f} s | {first} |")
    return "\n".join(lines)
