"""Listen to one job the way a mobile app does: a Firestore snapshot listener on jobs/{job_id}.

    FIRESTORE_EMULATOR_HOST=127.0.0.1:8081 python examples/mobile_listener.py JOB_ID \\
        --project sketchgen-dev

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
    """Call ``on_change`` with each version of the job document until it is final.

    Returns the final document; raises ``LookupError`` if the job does not exist and
    ``TimeoutError`` if it does not end in time.
    """
    final: dict[str, Any] = {}
    ended = threading.Event()
    missing = threading.Event()

    def on_snapshot(snapshots: list[Any], _changes: Any, _read_time: Any) -> None:
        if not snapshots:  # a document listener reports a missing document as no snapshot
            missing.set()
            ended.set()
            return
        for snapshot in snapshots:
            if not snapshot.exists:
                missing.set()
                ended.set()
                return
            doc = snapshot.to_dict()
            on_change(doc)
            if doc.get("status") in FINAL:
                final.update(doc)
                ended.set()

    watch = client.collection("jobs").document(job_id).on_snapshot(on_snapshot)
    try:
        if not ended.wait(timeout_s):
            raise TimeoutError(f"job {job_id} did not end within {timeout_s:.0f} s")
    finally:
        watch.unsubscribe()
    if missing.is_set():
        raise LookupError(f"no job {job_id} (or it is not yours to read)")
    return final


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
