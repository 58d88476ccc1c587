"""Spend control: what the per-user check adds to ``POST /v1/jobs``.

The HTTP API in this process (werkzeug's test client: no network hop of our own) over the
Firestore emulator for jobs and usage, the styles shipped with the package and a queue that
only collects (Pub/Sub is not what is measured). The same requests with spend control off and
on; on, each request also reads ``accounts/{uid}`` and ``usage/{uid}`` in one round trip
(``get_all``) and writes the usage back under a precondition. Requests alternate over 20
users, so no usage document holds more than a few charges; one more run where every
request is refused (429: over the day's images) shows what a refusal costs.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from dev.processes import ManagedProcess, emulator_command, free_port, wait_for_http

REQUESTS, USERS, WARM_UP = 200, 20, 20


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _measure(spend_on: bool, *, daily: int = 10**6) -> dict[str, float]:
    from google.cloud import firestore
    from werkzeug.test import Client

    from sketchgen.adapters.gcp.firestore_job_store import FirestoreJobStore
    from sketchgen.adapters.gcp.firestore_usage_ledger import FirestoreUsageLedger
    from sketchgen.adapters.local.blob_store import LocalBlobStore
    from sketchgen.api.auth import DevAuthenticator
    from sketchgen.api.http import Api
    from sketchgen.bootstrap import assemble
    from sketchgen.generate.offline import OfflineSketchAdapter
    from sketchgen.services.spending import SpendControl, SpendLimits
    from sketchgen.styles import PACKAGED_STYLES_DIR, StyleRegistry

    class Collecting:
        def publish(self, tasks: Any) -> None:
            pass

    client = firestore.Client(project=f"bench-spend-{uuid.uuid4().hex[:6]}")
    spend = (
        SpendControl(
            FirestoreUsageLedger(client), SpendLimits(daily_images=daily, active_jobs=10**6)
        )
        if spend_on
        else None
    )
    with tempfile.TemporaryDirectory() as blobs:
        service = assemble(
            jobs=FirestoreJobStore(client),
            blobs=LocalBlobStore(Path(blobs)),
            queue=Collecting(),
            model=OfflineSketchAdapter(),
            styles=StyleRegistry(PACKAGED_STYLES_DIR),
            spend=spend,
        )
        api = Client(Api(lambda: service, DevAuthenticator))
        body = {"brief": "playful golf mascot", "style_id": "loose-ink-mascot", "num_images": 3}
        times, statuses = [], set()
        for i in range(WARM_UP + REQUESTS):
            headers = {"Authorization": f"Bearer dev:user{i % USERS}"}
            started = time.perf_counter()
            response = api.post("/v1/jobs", json=body, headers=headers)
            elapsed = time.perf_counter() - started
            statuses.add(response.status_code)
            if i >= WARM_UP:
                times.append(elapsed * 1000)
    return {
        "p50_ms": round(statistics.median(times), 1),
        "p99_ms": round(_percentile(times, 0.99), 1),
        "status": sorted(statuses)[0],
    }


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as logs:
        port = free_port()
        emulator = ManagedProcess(
            "firestore", emulator_command("firestore", port), log_dir=Path(logs)
        ).start()
        previous = os.environ.get("FIRESTORE_EMULATOR_HOST")
        try:
            wait_for_http(f"http://127.0.0.1:{port}/", timeout_s=120, process=emulator)
            os.environ["FIRESTORE_EMULATOR_HOST"] = f"127.0.0.1:{port}"
            _measure(False)  # the first run pays for imports and the channel
            runs = {
                "off": _measure(False),
                "on": _measure(True),
                "refused": _measure(True, daily=0),
            }
        finally:
            emulator.stop()
            if previous is None:
                os.environ.pop("FIRESTORE_EMULATOR_HOST", None)
            else:
                os.environ["FIRESTORE_EMULATOR_HOST"] = previous
    return {"requests": REQUESTS, "users": USERS, **runs}


def markdown(results: dict[str, Any]) -> str:
    off, on, refused = results["off"], results["on"], results["refused"]
    return "\n".join(
        [
            f"`POST /v1/jobs` (3 sketches) through the HTTP API in one process over the "
            f"Firestore emulator (jobs and usage; emulator on the same cores), a queue that "
            f"only collects; {results['requests']} sequential requests after 20 to warm up, "
            f"over {results['users']} users. On: each request also reads `accounts/{{uid}}` "
            "and `usage/{uid}` in one round trip (`get_all`) and writes the usage back under "
            "a precondition (docs/decisions/0012). The machine was shared with other test "
            "runs: repeated runs minutes apart differed by up to 2x in the time the check "
            "adds.",
            "",
            "| spend control | p50 | p99 | answer |",
            "|---|---|---|---|",
            f"| off | {off['p50_ms']} ms | {off['p99_ms']} ms | {off['status']} |",
            f"| on | {on['p50_ms']} ms | {on['p99_ms']} ms | {on['status']} |",
            f"| on, refused (over the day's images) | {refused['p50_ms']} ms | "
            f"{refused['p99_ms']} ms | {refused['status']} |",
            "",
            f"The check adds {on['p50_ms'] - off['p50_ms']:.1f} ms at the median "
            f"({on['p99_ms'] - off['p99_ms']:.1f} ms at p99): two round trips to Firestore "
            "(the account and the usage read together, the usage written back). A refusal "
            "answers before references are retrieved, the job is "
            "planned or anything is stored, so it is cheaper than an accepted job.",
        ]
    )
