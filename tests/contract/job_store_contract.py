"""The JobStore contract: every store (memory, SQLite, Firestore) must pass all of it."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest

from sketchgen.errors import ConflictError
from sketchgen.jobs import Claim, JobRecord, JobRequest, PlanRecord, SketchState, utcnow
from sketchgen.metadata import new_job_id
from sketchgen.ports import JobStore
from sketchgen.prompt import plan_variations
from sketchgen.schemas import PromptSpec

SPEC = PromptSpec(
    brief="golf",
    style_id="ink",
    subject="golf",
    keywords=("golf",),
    base_prompt="golf",
    negative_rules=(),
)


def _job(store: JobStore, job_id: str) -> JobRecord:
    record = store.get_job(job_id)
    assert record is not None, f"job {job_id} is not stored"
    return record


def make_job(
    owner: str = "alice",
    n: int = 3,
    key: str | None = None,
    style: str = "ink",
    brief: str = "golf",
    deadline: timedelta | None = None,
) -> JobRecord:
    request = JobRequest(brief=brief, style_id=style, num_images=n)
    plan = PlanRecord(
        seed=1,
        model_requested="m",
        model_id="m",
        adapter="fake",
        prompt_spec=SPEC,
        variations=plan_variations(n, 1),
    )
    job = JobRecord.new(
        job_id=new_job_id(),
        owner_uid=owner,
        request=request,
        plan=plan,
        retention=timedelta(days=1),
        idempotency_key=key,
    )
    if deadline is not None:
        job = job.model_copy(update={"deadline": utcnow() + deadline})
    return job


def ok(path: str = "p") -> SketchState:
    return SketchState(status="ok", path=path, attempts=1)


class JobStoreContract:
    @pytest.fixture
    def store(self) -> JobStore:
        raise NotImplementedError

    def test_create_and_get(self, store: JobStore) -> None:
        job = make_job()
        assert store.create_job(job) == (job, True)
        assert store.get_job(job.job_id) == job
        assert store.get_job("20000101_000000-000000") is None

    def test_idempotency(self, store: JobStore) -> None:
        first = make_job(key="k")
        store.create_job(first)
        again, created = store.create_job(make_job(key="k"))
        assert not created and again.job_id == first.job_id
        with pytest.raises(ConflictError):
            store.create_job(make_job(key="k", n=4))
        other_owner, created = store.create_job(make_job(owner="bob", key="k"))
        assert created and other_owner.job_id != first.job_id

    def test_find_idempotent_reads_the_key_without_creating(self, store: JobStore) -> None:
        first = make_job(key="k")
        store.create_job(first)
        found = store.find_idempotent("alice", "k")
        assert found is not None and found.job_id == first.job_id
        assert store.find_idempotent("bob", "k") is None  # keys are per owner
        assert store.find_idempotent("alice", "other") is None

    def test_delete_owner_jobs_takes_only_the_owners(self, store: JobStore) -> None:
        mine = [make_job(key="k"), make_job()]
        theirs = make_job(owner="bob", key="k")
        for job in (*mine, theirs):
            store.create_job(job)
        deleted = store.delete_owner_jobs("alice")
        assert sorted(deleted) == sorted(j.job_id for j in mine)
        assert all(store.get_job(j.job_id) is None for j in mine)
        assert store.find_idempotent("alice", "k") is None
        assert store.list_jobs(owner_uid="alice") == []
        assert store.get_job(theirs.job_id) == theirs
        assert store.find_idempotent("bob", "k") is not None
        assert store.delete_owner_jobs("alice") == []
        # The key is free again: a new job may take it.
        assert store.create_job(make_job(key="k"))[1]

    def test_claim_lifecycle(self, store: JobStore) -> None:
        job = make_job()
        store.create_job(job)
        first = store.claim_sketch(job.job_id, 0, worker="a", lease_s=60)
        assert first.claim is Claim.CLAIMED and first.attempt == 1
        assert first.job is not None and first.job.status == "running"
        assert store.claim_sketch(job.job_id, 0, worker="b", lease_s=60).claim is Claim.LEASED
        later = utcnow() + timedelta(seconds=61)
        takeover = store.claim_sketch(job.job_id, 0, worker="b", lease_s=60, now=later)
        assert takeover.claim is Claim.CLAIMED and takeover.attempt == 2
        stale = store.finish_sketch(job.job_id, 0, worker="a", state=ok("stale"))
        assert not stale.accepted
        done = store.finish_sketch(job.job_id, 0, worker="b", state=ok("fresh"))
        assert done.accepted and not done.finalize
        stored = store.get_job(job.job_id)
        assert stored is not None and stored.sketch(0).path == "fresh" and stored.sketch(0).seq == 1
        assert (
            store.claim_sketch(job.job_id, 0, worker="c", lease_s=60).claim is Claim.ALREADY_ENDED
        )
        assert store.claim_sketch(job.job_id, 9, worker="c", lease_s=60).claim is Claim.MISSING
        assert (
            store.claim_sketch("20000101_000000-000000", 0, worker="c", lease_s=60).claim
            is Claim.MISSING
        )

    def test_a_renewed_lease_is_kept_and_a_lost_one_is_not_renewed(self, store: JobStore) -> None:
        """The heartbeat (docs/decisions/0069): a renewal extends the holder's lease from its
        moment; another worker cannot claim before the renewed lease runs out; once it has
        run out and another worker took the sketch over, the old holder's renewal is refused
        (and changes nothing); an ended, cancelled or missing sketch is never renewed."""
        job = make_job(n=2)
        store.create_job(job)
        start = utcnow()

        def at(seconds: float) -> datetime:
            return start + timedelta(seconds=seconds)

        assert store.claim_sketch(job.job_id, 0, worker="a", lease_s=60, now=at(0)).attempt == 1
        assert store.renew_lease(job.job_id, 0, worker="a", lease_s=60, now=at(40))
        held = _job(store, job.job_id).sketch(0)
        assert held.lease_owner == "a" and held.lease_expires_at == at(100)
        assert held.attempts == 1 and held.model_calls == 1  # a renewal is no new attempt
        # Past the first lease, within the renewed one: still held.
        rival = store.claim_sketch(job.job_id, 0, worker="b", lease_s=60, now=at(90))
        assert rival.claim is Claim.LEASED
        assert not store.renew_lease(job.job_id, 0, worker="b", lease_s=60, now=at(90))
        # A lease that ran out but was not taken over is still its holder's.
        assert store.renew_lease(job.job_id, 0, worker="a", lease_s=60, now=at(120))
        assert _job(store, job.job_id).sketch(0).lease_expires_at == at(180)
        # Run out (a dead holder): the next claim takes it over; the old holder's renewal fails.
        taken = store.claim_sketch(job.job_id, 0, worker="b", lease_s=60, now=at(181))
        assert taken.claim is Claim.CLAIMED and taken.attempt == 2
        before = _job(store, job.job_id)
        assert not store.renew_lease(job.job_id, 0, worker="a", lease_s=60, now=at(182))
        assert _job(store, job.job_id) == before
        assert store.renew_lease(job.job_id, 0, worker="b", lease_s=60, now=at(182))
        assert not store.finish_sketch(job.job_id, 0, worker="a", state=ok("stale")).accepted
        assert store.finish_sketch(job.job_id, 0, worker="b", state=ok()).accepted
        assert not store.renew_lease(job.job_id, 0, worker="b", lease_s=60)  # ended
        store.claim_sketch(job.job_id, 1, worker="c", lease_s=60)
        store.cancel_job(job.job_id)
        assert not store.renew_lease(job.job_id, 1, worker="c", lease_s=60)  # cancelled
        assert _job(store, job.job_id).sketch(1).status == "cancelled"
        assert not store.renew_lease(job.job_id, 7, worker="c", lease_s=60)
        assert not store.renew_lease("no-such-job", 0, worker="c", lease_s=60)

    def test_a_released_sketch_is_not_renewed(self, store: JobStore) -> None:
        job = make_job(n=1)
        store.create_job(job)
        store.claim_sketch(job.job_id, 0, worker="a", lease_s=60)
        store.release_sketch(job.job_id, 0, worker="a", error="503")
        assert not store.renew_lease(job.job_id, 0, worker="a", lease_s=60)
        state = _job(store, job.job_id).sketch(0)
        assert state.status == "pending" and state.lease_owner is None

    def test_release_goes_back_to_pending(self, store: JobStore) -> None:
        job = make_job(n=1)
        store.create_job(job)
        store.claim_sketch(job.job_id, 0, worker="a", lease_s=60)
        store.release_sketch(job.job_id, 0, worker="a", error="503")
        state = _job(store, job.job_id).sketch(0)
        assert state.status == "pending" and state.attempts == 1 and state.error == "503"
        assert store.claim_sketch(job.job_id, 0, worker="b", lease_s=60).attempt == 2

    def test_a_refunded_release_gives_the_attempt_back(self, store: JobStore) -> None:
        job = make_job(n=1)
        store.create_job(job)
        store.claim_sketch(job.job_id, 0, worker="a", lease_s=60)
        store.release_sketch(job.job_id, 0, worker="a", error="503")
        store.claim_sketch(job.job_id, 0, worker="b", lease_s=60)
        store.release_sketch(job.job_id, 0, worker="b", error=None, refund=True)  # no slot came
        state = _job(store, job.job_id).sketch(0)
        assert state.status == "pending" and state.attempts == 1 and state.error == "503"
        store.release_sketch(job.job_id, 0, worker="b", error=None, refund=True)  # not held: no-op
        assert _job(store, job.job_id).sketch(0).attempts == 1

    def test_finalize_exactly_once_under_contention(self, store: JobStore) -> None:
        n = 6
        job = make_job(n=n)
        store.create_job(job)
        for i in range(n):
            store.claim_sketch(job.job_id, i, worker=f"w{i}", lease_s=60)
        barrier = threading.Barrier(n)

        def finish(i: int) -> bool:
            barrier.wait()
            return store.finish_sketch(job.job_id, i, worker=f"w{i}", state=ok()).finalize

        with ThreadPoolExecutor(n) as pool:
            finals = list(pool.map(finish, range(n)))
        assert finals.count(True) == 1
        stored = store.get_job(job.job_id)
        assert stored is not None and sorted(s.seq for s in stored.sketches.values()) == list(
            range(1, n + 1)
        )
        assert stored.all_ended and stored.event_seq == n

    def test_cancel_ends_running_sketches_at_once(self, store: JobStore) -> None:
        job = make_job(n=3)
        store.create_job(job)
        store.claim_sketch(job.job_id, 0, worker="a", lease_s=60)
        store.claim_sketch(job.job_id, 1, worker="b", lease_s=60)
        store.finish_sketch(job.job_id, 1, worker="b", state=ok())
        result = store.cancel_job(job.job_id)
        assert result.accepted and result.finalize  # nothing is left to wait for
        stored = store.get_job(job.job_id)
        assert stored is not None and stored.cancel_requested and stored.all_ended
        assert [stored.sketch(i).status for i in range(3)] == ["cancelled", "ok", "cancelled"]
        assert stored.sketch(0).lease_owner is None and stored.sketch(0).attempts == 1
        assert [stored.sketch(i).seq for i in range(3)] == [2, 1, 3] and stored.event_seq == 3
        # The worker whose model call lands afterwards is refused: the cancel stands.
        late = store.finish_sketch(job.job_id, 0, worker="a", state=ok("late"))
        assert not late.accepted and not late.finalize
        store.release_sketch(job.job_id, 0, worker="a", error="503")  # a no-op as well
        assert store.get_job(job.job_id) == stored
        assert (
            store.claim_sketch(job.job_id, 2, worker="c", lease_s=60).claim is Claim.ALREADY_ENDED
        )
        final = store.complete_job(job.job_id, metadata_path="jobs/x/metadata.json")
        assert final.status == "partial" and final.metadata_path == "jobs/x/metadata.json"
        assert store.complete_job(job.job_id, metadata_path="jobs/x/metadata.json") == final
        again = store.cancel_job(job.job_id)
        assert not again.accepted and not again.finalize

    def test_one_sketch_reads_as_the_whole_job_shows_it(self, store: JobStore) -> None:
        """``get_sketch`` (the worker's cancel check while the model draws) sees what
        ``get_job`` sees of that sketch at every step — pending, claimed, ended, cancelled,
        final — but its ``seq``, and nothing for a job or sketch that does not exist."""
        job = make_job(n=3)
        store.create_job(job)

        def same() -> None:
            whole = _job(store, job.job_id)
            for i in range(3):
                seen = whole.sketches[str(i)].model_copy(update={"seq": None})
                assert store.get_sketch(job.job_id, i) == seen, i

        same()
        store.claim_sketch(job.job_id, 0, worker="a", lease_s=60)
        store.claim_sketch(job.job_id, 1, worker="b", lease_s=60)
        held = store.get_sketch(job.job_id, 0)
        assert held is not None and held.status == "running" and held.lease_owner == "a"
        same()
        store.finish_sketch(job.job_id, 1, worker="b", state=ok())
        same()
        store.cancel_job(job.job_id)
        cancelled = store.get_sketch(job.job_id, 0)
        assert cancelled is not None and cancelled.status == "cancelled"
        same()
        store.complete_job(job.job_id, metadata_path="jobs/x/metadata.json")
        same()
        assert store.get_sketch(job.job_id, 3) is None
        assert store.get_sketch("no-such-job", 0) is None

    def test_cancel_without_running_lets_started_sketches_finish(self, store: JobStore) -> None:
        job = make_job(n=3)
        store.create_job(job)
        store.claim_sketch(job.job_id, 0, worker="a", lease_s=60)
        result = store.cancel_job(job.job_id, running=False)  # what a deadline does
        assert result.accepted and not result.finalize  # sketch 0 is still running
        stored = store.get_job(job.job_id)
        assert stored is not None and stored.cancel_requested
        assert [stored.sketch(i).status for i in range(3)] == ["running", "cancelled", "cancelled"]
        last = store.finish_sketch(job.job_id, 0, worker="a", state=ok())
        assert last.accepted and last.finalize
        final = store.complete_job(job.job_id, metadata_path="jobs/x/metadata.json")
        assert final.status == "partial"

    def test_deadline_cancels_unstarted_sketches(self, store: JobStore) -> None:
        job = make_job(n=2, deadline=timedelta(seconds=-1))
        store.create_job(job)
        late = store.claim_sketch(job.job_id, 0, worker="a", lease_s=60)
        assert late.claim is Claim.ALREADY_ENDED and late.finalize  # it ended the last sketch
        again = store.claim_sketch(job.job_id, 1, worker="b", lease_s=60)
        assert again.claim is Claim.ALREADY_ENDED and not again.finalize
        stored = store.get_job(job.job_id)
        assert stored is not None and stored.all_ended
        assert {s.status for s in stored.sketches.values()} == {"cancelled"}

    def test_watch_sees_changes_in_order(self, store: JobStore) -> None:
        job = make_job(n=3)
        store.create_job(job)
        seen: list[int] = []
        with store.watch_job(job.job_id) as snapshots:
            first = next(snapshots)
            assert first.job_id == job.job_id
            for i in range(3):
                store.claim_sketch(job.job_id, i, worker="w", lease_s=60)
                store.finish_sketch(job.job_id, i, worker="w", state=ok())
            for snapshot in snapshots:
                seen.append(snapshot.event_seq)
                if snapshot.event_seq == 3:
                    break
        assert seen == sorted(seen) and seen[-1] == 3

    def test_list_jobs(self, store: JobStore) -> None:
        a1, a2 = make_job(style="s1"), make_job(style="s2")
        b1 = make_job(owner="bob", style="s1")
        for job in (a1, a2, b1):
            store.create_job(job)
        assert {j.job_id for j in store.list_jobs(owner_uid="alice")} >= {a1.job_id, a2.job_id}
        assert b1.job_id not in {j.job_id for j in store.list_jobs(owner_uid="alice")}
        by_style = {j.job_id for j in store.list_jobs(style_id="s1")}
        assert {a1.job_id, b1.job_id} <= by_style and a2.job_id not in by_style
        assert [j.job_id for j in store.list_jobs(job_ids=[a2.job_id, "nope"])] == [a2.job_id]
