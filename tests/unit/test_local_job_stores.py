from pathlib import Path

import pytest

from sketchgen.adapters.local.job_store import MemoryJobStore, SqliteJobStore
from sketchgen.ports import JobStore
from tests.contract.job_store_contract import JobStoreContract, make_job


class TestMemoryJobStore(JobStoreContract):
    @pytest.fixture
    def store(self) -> JobStore:
        return MemoryJobStore()


class TestSqliteJobStore(JobStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> JobStore:
        return SqliteJobStore(tmp_path / "jobs.sqlite3", poll_s=0.01)


def test_two_sqlite_stores_share_one_file(tmp_path: Path) -> None:
    a, b = SqliteJobStore(tmp_path / "j.db"), SqliteJobStore(tmp_path / "j.db")
    job = make_job(n=1)
    a.create_job(job)
    assert b.claim_sketch(job.job_id, 0, worker="b", lease_s=60).attempt == 1
    assert a.claim_sketch(job.job_id, 0, worker="a", lease_s=60).claim.value == "leased"


def test_a_stored_job_with_fields_this_version_does_not_know_is_read(tmp_path: Path) -> None:
    """A rolling deploy: a newer instance wrote fields (in the job, a sketch, the plan) that
    this one does not know. It reads the job with them ignored; it never writes one."""
    import json
    import sqlite3

    import pydantic

    from sketchgen.jobs import JobRecord, SketchState

    store = SqliteJobStore(tmp_path / "j.db")
    job = make_job(n=2)
    store.create_job(job)
    doc = json.loads(job.model_dump_json())
    doc["priority_boost"] = 3
    doc["sketches"]["0"]["thumbnail"] = "t.png"
    doc["plan"]["prompt_spec"]["mood"] = "sunny"
    with sqlite3.connect(tmp_path / "j.db") as db:
        db.execute("UPDATE jobs SET doc = ? WHERE job_id = ?", (json.dumps(doc), job.job_id))
    assert store.get_job(job.job_id) == job
    assert store.claim_sketch(job.job_id, 0, worker="w", lease_s=60).attempt == 1
    with pytest.raises(pydantic.ValidationError):  # strict on write: no unknown field is made
        SketchState(status="ok", thumbnail="t.png")
    with pytest.raises(pydantic.ValidationError):
        JobRecord.model_validate({**job.model_dump(), "priority_boost": 3})
