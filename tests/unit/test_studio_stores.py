"""The studio's store methods on the local stores (the Firestore ones run the same contract
on the emulator: tests/integration/test_studio_on_emulators.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sketchgen.adapters.local.favourite_store import MemoryFavouriteStore, SqliteFavouriteStore
from sketchgen.adapters.local.job_store import MemoryJobStore, SqliteJobStore
from sketchgen.ports import FavouriteStore, JobStore
from tests.contract.studio_contract import FavouriteStoreContract, JobPagesContract


class TestMemoryJobPages(JobPagesContract):
    @pytest.fixture
    def store(self) -> JobStore:
        return MemoryJobStore()


class TestSqliteJobPages(JobPagesContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> JobStore:
        return SqliteJobStore(tmp_path / "jobs.sqlite3")


class TestMemoryFavourites(FavouriteStoreContract):
    @pytest.fixture
    def favourites(self) -> FavouriteStore:
        return MemoryFavouriteStore()


class TestSqliteFavourites(FavouriteStoreContract):
    @pytest.fixture
    def favourites(self, tmp_path: Path) -> FavouriteStore:
        # Beside the jobs, in the same file, as bootstrap builds it.
        SqliteJobStore(tmp_path / "jobs.sqlite3")
        return SqliteFavouriteStore(tmp_path / "jobs.sqlite3")
