"""Import time and peak memory, each in a fresh interpreter."""

from __future__ import annotations

import json
from typing import Any

from bench.common import median, run_python

_IMPORT = """
import time, json
t = time.perf_counter()
import {module}
print(json.dumps(time.perf_counter() - t))
"""

_JOB = """
import json, re, tempfile
from sketchgen.generate import GenerationConfig, ImageGenerator, OfflineSketchAdapter
from sketchgen.prompt import PromptCompiler
from sketchgen.references import ImageRetriever
from sketchgen.styles import StyleRegistry
style = StyleRegistry().get_style("loose-ink-mascot")
spec = PromptCompiler().compile("playful golf mascot", style)
with tempfile.TemporaryDirectory() as tmp:
    ImageGenerator(OfflineSketchAdapter()).generate(
        prompt_spec=spec, retrieval_result=ImageRetriever().retrieve(spec, style), style=style,
        config=GenerationConfig(num_images=6, image_size="{size}", seed=1, output_dir=tmp))
# VmHWM, not ru_maxrss: ru_maxrss survives exec and would report the parent's peak.
status = open("/proc/self/status").read()
print(json.dumps(int(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1)) / 1024))
"""


def run() -> dict[str, Any]:
    imports = {}
    for module in (
        "sketchgen",
        "sketchgen.generate",
        "sketchgen.cli",
        "sketchgen.generate.nano_banana",
    ):
        imports[module] = round(
            median([json.loads(run_python(_IMPORT.format(module=module))) for _ in range(5)])
            * 1000,
            1,
        )
    memory = {
        size: round(json.loads(run_python(_JOB.replace("{size}", size))), 1)
        for size in ("1K", "4K")
    }
    return {"import_ms": imports, "peak_rss_mib": memory}


def markdown(results: dict[str, Any]) -> str:
    lines = ["| import | time (median of 5, fresh interpreter) |", "|---|---|"]
    lines += [f"| `import {m}` | {ms:.0f} ms |" for m, ms in results["import_ms"].items()]
    lines += ["", "| 6-sketch offline job | peak RSS of the process |", "|---|---|"]
    lines += [f"| {size} | {mib:.0f} MiB |" for size, mib in results["peak_rss_mib"].items()]
    return "\n".join(lines)
