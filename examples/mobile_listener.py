"""Listen to one job the way a mobile app does: snapshot listeners on jobs/{job_id} and on
its sketches (jobs/{job_id}/sketches/{i}, one document per sketch while the job runs).

    FIRESTORE_EMULATOR_HOST=127.0.0.1:8081 python examples/mobile_listener.py JOB_ID \\
        --project sketchgen-dev

The job document says what was asked and, once the job is final, everything (each sketch's
final state is copied in); while it runs, each sketch's progress is in its own document.
Prints one line per change (the job's status and each sketch's) and exits 0 when the job
reaches a final state; 1 with a one-line message on a timeout or a missing job. The app's own
code does the same with the Firebase SDK for iOS, Android or Flutter (docs/CLIENTS.md).
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Callable
from typing import Any

FINAL = {"done", "partial", "failed", "cancelled"}


def listen(
    client: Any, job_id: str, on_change: Callable[[dict[str, Any]], None], timeout_s: float
) -> dict[str, Any]:
    """Call ``on_change`` with each version of the job (the job document with its sketch
    documents laid over it) until it is final.

    Returns the final document; raises ``LookupError`` if the job does not exist and
    ``TimeoutError`` if it does not end in time.
    """
    final: dict[str, Any] = {}
    ended = threading.Event()
    missing = threading.Event()
    lock = threading.Lock()
    job: dict[str, Any] = {}
    sketches: dict[str, dict[str, Any]] = {}

    def changed() -> None:  # caller holds ``lock``
        if not job or ended.is_set():
            return
        doc = merged(job, sketches)
        on_change(doc)
        if doc.get("status") in FINAL:
            final.update(doc)
            ended.set()

    def on_job(snapshots: list[Any], _changes: Any, _read_time: Any) -> None:
        with lock:
            if not snapshots or not snapshots[0].exists:  # a missing document: no snapshot
                missing.set()
                ended.set()
                return
            job.clear()
            job.update(snapshots[0].to_dict())
            changed()

    def on_sketches(snapshots: list[Any], _changes: Any, _read_time: Any) -> None:
        with lock:
            sketches.clear()
            sketches.update({s.id: s.to_dict() for s in snapshots})
            changed()

    ref = client.collection("jobs").document(job_id)
    watches = [ref.on_snapshot(on_job), ref.collection("sketches").on_snapshot(on_sketches)]
    try:
        if not ended.wait(timeout_s):
            raise TimeoutError(f"job {job_id} did not end within {timeout_s:.0f} s")
    finally:
        for watch in watches:
            watch.unsubscribe()
    if missing.is_set():
        raise LookupError(f"no job {job_id} (or it is not yours to read)")
    return final


def merged(job: dict[str, Any], sketches: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The job as the API shows it: a final job document is complete; before that, each
    sketch's own document is newer than the job's copy, and the job runs once one started."""
    if job.get("status") in FINAL:
        return dict(job)
    states = {**job.get("sketches", {}), **sketches}
    started = any(s.get("status") != "pending" for s in states.values())
    return {**job, "sketches": states, "status": "running" if started else "queued"}


def describe(doc: dict[str, Any]) -> str:
    sketches = doc.get("sketches", {})
    states = " ".join(f"{i}:{sketches[i]['status']}" for i in sorted(sketches, key=int))
    return f"{doc.get('status')} [{states}]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("job_id")
    parser.add_argument("--project", default=None, help="Google Cloud project (or the emulator's)")
    parser.add_argument("--timeout", type=float, default=600.0, metavar="S")
    args = parser.parse_args(argv)

    from google.cloud import firestore

    client = firestore.Client(project=args.project)
    try:
        final = listen(
            client, args.job_id, lambda doc: print(describe(doc), flush=True), args.timeout
        )
    except (LookupError, TimeoutError) as error:
        print(f"mobile_listener: {error}", file=sys.stderr)
        return 1
    print(f"final: {final['status']}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
