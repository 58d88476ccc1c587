"""examples/mobile_listener.py on the Firestore emulator: a mobile client's view of a job."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from sketchgen.adapters.gcp.firestore_job_store import FirestoreJobStore
from sketchgen.bootstrap import assemble
from sketchgen.jobs import JobRequest, SketchState
from sketchgen.styles import StyleRegistry
from tests.helpers.fakes import CollectingQueue, FakeImageModel

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mobile_listener.py"
PROJECT = "sketchgen-mobile-example"


def _example() -> Any:
    spec = importlib.util.spec_from_file_location("mobile_listener", EXAMPLE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _ended_at_least(seen: list[str], count: int) -> bool:
    return seen[-1].count(":ok") >= count


def test_listener_sees_each_sketch_end_then_the_final_state(
    firestore_emulator: str, tmp_path: Path
) -> None:
    from google.cloud import firestore

    from sketchgen.adapters.local.blob_store import LocalBlobStore

    client = firestore.Client(project=PROJECT)
    service = assemble(
        jobs=FirestoreJobStore(client), blobs=LocalBlobStore(tmp_path), queue=CollectingQueue(),
        model=FakeImageModel(), styles=StyleRegistry(),
    )  # fmt: skip
    job, _ = service.submission.submit_job(
        "phone-user", JobRequest(brief="golf mascot", style_id="loose-ink-mascot", num_images=3)
    )
    example = _example()
    seen: list[str] = []
    result: dict[str, Any] = {}
    changed = threading.Condition()  # notified as each snapshot reaches the listener

    def on_change(document: Any) -> None:
        with changed:
            seen.append(example.describe(document))
            changed.notify_all()

    def wait_until(reached: Callable[[], bool]) -> None:
        with changed:
            assert changed.wait_for(reached, timeout=30), f"the listener saw only {seen}"

    def run() -> None:
        result.update(example.listen(client, job.job_id, on_change, timeout_s=60))

    listener = threading.Thread(target=run)
    listener.start()
    wait_until(lambda: bool(seen))  # listening: the job as it stands
    for ended, task in enumerate(service.queue.tasks, 1):
        assert service.worker.run_sketch(task)
        # Each sketch's end reaches the listener before the next one is drawn.
        wait_until(partial(_ended_at_least, seen, ended))
    listener.join(30)
    assert result["status"] == "done" and result["owner_uid"] == "phone-user"
    assert seen[0].startswith("queued") and seen[-1] == "done [0:ok 1:ok 2:ok]"
    oks = [line.count(":ok") for line in seen]
    assert oks == sorted(oks) and 1 in oks and 2 in oks  # progress arrives in order
    assert set(result["sketches"]["0"]) >= set(SketchState.model_fields)

    command = [sys.executable, str(EXAMPLE), job.job_id, "--project", PROJECT, "--timeout", "20"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "final: done"

    missing = subprocess.run([*command[:2], "20990101_000000-abcdef", *command[3:]],
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert missing.returncode == 1 and "no job" in missing.stderr
