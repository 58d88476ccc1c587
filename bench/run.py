"""``make bench``: run the benchmarks and write ``docs/BENCHMARKS.md``.

    python bench/run.py                 # every benchmark
    python bench/run.py finish service  # some of them; the others keep their last results

Each benchmark module has ``run() -> dict`` (saved to ``bench/results/<name>.json``) and
``markdown(dict) -> str``; the page is rebuilt from the saved results, so a partial run
never loses the figures of the benchmarks it did not run.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import RESULTS, ROOT, machine, save

BENCHMARKS = {
    "generate": "Library: ImageGenerator modes",
    "service": "Service on the `make dev` topology",
    "cold": "Cold starts: a just-started instance and the library's first job",
    "waits": "Where a user waits: before → after (issue 28)",
    "faults": "Faults: 503s and missing images on the `make dev` topology",
    "quota": "Quota: the model's rate limit shared by every worker",
    "burst": "Burst: 20 jobs x 6 sketches at once, Firestore writes per document",
    "load": "Load: the generate endpoint and the event stream",
    "spend": "Spend control: the per-user check on POST /v1/jobs",
    "ceiling": "Deployment ceiling: shard writes at 10,000 and 100,000 jobs an hour",
    "scale": "Scale: a load simulator at 10,000 and 100,000 jobs an hour (issue 24)",
    "streams": "Streams: 1,000 event-stream clients on one stream instance",
    "finish": "Finisher",
    "guard": "Style guard",
    "footprint": "Import time and memory",
    "retrieval": "Retrieval for user styles: recall@3 and index latency",
    "edge": "Hostile requests: memory of the serving process",
    "exports": "Draw-over exports: time and size per format",
    "first_hour": "First hour: the offline model against the style guard, and `make demo`",
    "telemetry": "Telemetry: what one sketch's spans, metrics and log fields add",
}
PAGE = ROOT / "docs" / "BENCHMARKS.md"


def render() -> str:
    sections = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`bench/run.py`) from `bench/results/*.json`; each section "
        "names its method. Figures are medians unless stated. No Gemini is called: the model "
        "is `sketchgen.testing.gemini_server`, the local server speaking the Gemini REST "
        "protocol, reached through the real google-genai SDK.",
        "",
    ]
    for name, title in BENCHMARKS.items():
        path = RESULTS / f"{name}.json"
        if not path.exists():
            continue
        results = json.loads(path.read_text())
        module = importlib.import_module(f"bench.bench_{name}")
        sections += [
            f"## {title}",
            "",
            f"Machine: {results['_machine']}. Run {results['_date']}.",
            "",
            module.markdown(results),
            "",
        ]
    return "\n".join(sections)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=", ".join(BENCHMARKS))
    names = parser.parse_args().names or list(BENCHMARKS)
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    for name in names:
        print(f"bench {name} …", flush=True)
        results = importlib.import_module(f"bench.bench_{name}").run()
        results["_machine"] = machine()
        results["_date"] = time.strftime("%Y-%m-%d")
        save(name, results)
        print(json.dumps(results, indent=2), flush=True)
    PAGE.write_text(render())
    print(f"wrote {PAGE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
