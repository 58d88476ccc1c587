"""Spend control on the Firestore emulator (docs/decisions/0012): two generate processes, each
with its own Firestore client, take 50 concurrent submissions of one user and never pass the
day's images or the active-job cap; another user is unaffected; refunds happen once however
often a sketch's message is delivered."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

from google.cloud import firestore

from sketchgen.adapters.gcp.firestore_job_store import FirestoreJobStore
from sketchgen.adapters.gcp.firestore_usage_ledger import FirestoreUsageLedger
from sketchgen.adapters.local.blob_store import LocalBlobStore
from sketchgen.bootstrap import assemble
from sketchgen.errors import NoImageError
from sketchgen.generate.retry import RetryPolicy
from sketchgen.jobs import JobRequest
from sketchgen.services import ServiceConfig, SketchService
from sketchgen.services.spending import SpendControl, SpendLimits
from sketchgen.spend import Account
from sketchgen.styles import StyleRegistry
from tests.helpers.fakes import CollectingQueue, FakeImageModel

DAILY, ACTIVE, IMAGES, PER_PROCESS = 30, 3, 4, 25

# One generate process: the service as bootstrap builds it from the environment (Firestore
# jobs and usage, the offline model), a queue that counts what was published. At START every
# thread submits at once.
_GENERATE = """
import json, sys, threading, time
from sketchgen import bootstrap
from sketchgen.errors import LimitError
from sketchgen.jobs import JobRequest

class Counting:
    def __init__(self): self.tasks, self.lock = [], threading.Lock()
    def publish(self, tasks):
        with self.lock: self.tasks.extend(tasks)

queue = Counting()
service = bootstrap.build_service(queue=queue)
start_at, per_user = float(sys.argv[1]), int(sys.argv[2])
results, lock = [], threading.Lock()

def submit(uid, n):
    request = JobRequest(brief=f"golf mascot {n}", style_id="loose-ink-mascot", num_images=4)
    time.sleep(max(0.0, start_at - time.time()))
    try:
        job, _ = service.submission.submit_job(uid, request)
        outcome = ["ok", job.job_id]
    except LimitError as error:
        outcome = [error.code, None]
    with lock: results.append([uid, *outcome])

threads = [threading.Thread(target=submit, args=(uid, n))
           for n in range(per_user) for uid in ("alice", "carol")]
for t in threads: t.start()
for t in threads: t.join()
submit("bob", 0)  # another user, after the rush: unaffected by alice's and carol's limits
print(json.dumps({"results": results, "tasks": [t.job_id for t in queue.tasks]}))
"""


def test_fifty_concurrent_submissions_across_two_processes_hold_every_limit(
    firestore_emulator: str, tmp_path: Path
) -> None:
    project = f"spend-{uuid.uuid4().hex[:8]}"
    ledger = FirestoreUsageLedger(firestore.Client(project=project))
    # carol may hold any number of jobs: her day's images are the limit that binds.
    ledger.set_account("carol", Account(active_jobs=100))
    env = {
        **os.environ,
        "FIRESTORE_EMULATOR_HOST": firestore_emulator,
        "SKETCHGEN_PROJECT": project,
        "SKETCHGEN_JOB_STORE": "firestore",
        "SKETCHGEN_BLOB_URL": f"file://{tmp_path / 'blobs'}",
        "SKETCHGEN_OFFLINE": "1",
        "SKETCHGEN_USER_DAILY_IMAGES": str(DAILY),
        "SKETCHGEN_USER_ACTIVE_JOBS": str(ACTIVE),
    }
    start_at = time.time() + 15  # both processes imported and warm before the rush
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _GENERATE, str(start_at), str(PER_PROCESS)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
        )
        for _ in range(2)
    ]
    results, tasks = [], []
    for process in processes:
        out, _ = process.communicate(timeout=300)
        assert process.returncode == 0
        answer = json.loads(out)
        results += answer["results"]
        tasks += answer["tasks"]
    outcomes = Counter((uid, outcome) for uid, outcome, _ in results)
    # alice: the active-job cap binds (no job ends: nothing works the queue here).
    assert outcomes[("alice", "ok")] == ACTIVE
    assert outcomes[("alice", "too_many_active_jobs")] == 2 * PER_PROCESS - ACTIVE
    # carol: the day's images bind, 4 at a time: 7 jobs, 28 images.
    assert outcomes[("carol", "ok")] == DAILY // IMAGES
    assert outcomes[("carol", "budget_exhausted")] == 2 * PER_PROCESS - DAILY // IMAGES
    assert outcomes[("bob", "ok")] == 2
    # Nothing refused was stored or queued: exactly the accepted jobs, each with its sketches.
    accepted = {job_id for _, outcome, job_id in results if outcome == "ok"}
    assert Counter(tasks) == dict.fromkeys(accepted, IMAGES)
    store = FirestoreJobStore(firestore.Client(project=project))
    for uid, count in (("alice", ACTIVE), ("carol", DAILY // IMAGES), ("bob", 2)):
        stored = store.list_jobs(owner_uid=uid)
        assert {j.job_id for j in stored} <= accepted and len(stored) == count
    assert ledger.usage("alice").images_used == ACTIVE * IMAGES
    assert len(ledger.usage("alice").active_job_ids) == ACTIVE
    assert ledger.usage("carol").images_used == (DAILY // IMAGES) * IMAGES
    assert ledger.usage("bob").images_used == 2 * IMAGES


def test_refunds_happen_once_however_often_a_message_is_delivered(
    firestore_emulator: str, tmp_path: Path, style_registry: StyleRegistry
) -> None:
    project = f"spend-{uuid.uuid4().hex[:8]}"
    ledger = FirestoreUsageLedger(firestore.Client(project=project))
    config = ServiceConfig(
        lease_s=30, lease_wait_s=5, lease_poll_s=0.05, retry=RetryPolicy(max_attempts=1)
    )

    def instance() -> SketchService:
        # Each with its own Firestore client, as two worker instances have.
        client = firestore.Client(project=project)
        return assemble(
            jobs=FirestoreJobStore(client),
            blobs=LocalBlobStore(tmp_path / "blobs"),
            queue=CollectingQueue(),
            model=FakeImageModel(
                failures={1: lambda: NoImageError("no image", finish_reason="SAFETY")}
            ),
            styles=style_registry,
            config=config,
            spend=SpendControl(
                FirestoreUsageLedger(client), SpendLimits(daily_images=10, active_jobs=3)
            ),
        )

    first, second = instance(), instance()
    request = JobRequest(brief="golf mascot", style_id="test-ink", num_images=3, model="flash")
    job, _ = first.submission.submit_job("alice", request)
    assert ledger.usage("alice").images_used == 3
    tasks = list(first.queue.tasks)
    # Every message delivered to both instances at once, then once more to each.
    threads = [
        threading.Thread(target=service.worker.run_sketch, args=(task,))
        for task in tasks
        for service in (first, second)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for task in tasks:
        first.worker.run_sketch(task)
        second.worker.run_sketch(task)
    first.stored.finalize_job(job.job_id)
    second.stored.finalize_job(job.job_id)

    usage = ledger.usage("alice")
    # Every call sent is charged, once (docs/decisions/0025): 3 sketches, 3 calls.
    assert usage.images_used == 3 and usage.active_job_ids == []
    assert abs(usage.cost_usd - 3 * 0.039) < 1e-9
    final = first.submission.get_job("alice", job.job_id)
    assert final.status == "partial" and abs((final.cost_usd or 0) - 0.117) < 1e-9
    assert [s.model_calls for s in final.sketches.values()] == [1, 1, 1]
