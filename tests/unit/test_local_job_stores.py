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
