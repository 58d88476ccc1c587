"""What the studio (issue 27) needs of the stores: ``JobStore.page_jobs`` / ``delete_job``
and a ``FavouriteStore``. Every implementation (memory, SQLite, Firestore) must pass it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sketchgen.jobs import JobRecord
from sketchgen.ports import Favourite, FavouriteStore, JobStore
from tests.contract.job_store_contract import make_job

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _at(job: JobRecord, minutes: int) -> JobRecord:
    stamp = T0 + timedelta(minutes=minutes)
    return job.model_copy(update={"created_at": stamp, "updated_at": stamp})


def _all_pages(store: JobStore, owner: str, limit: int, **filters: str) -> list[list[str]]:
    pages, cursor = [], None
    for _ in range(50):
        page = store.page_jobs(owner, limit=limit, cursor=cursor, **filters)
        pages.append([j.job_id for j in page.jobs])
        cursor = page.next_cursor
        if cursor is None:
            return pages
    raise AssertionError("paging never ended")


class JobPagesContract:
    @pytest.fixture
    def store(self) -> JobStore:
        raise NotImplementedError

    def test_pages_run_newest_first_and_end(self, store: JobStore) -> None:
        mine = [_at(make_job(brief=f"golf {i}"), i) for i in range(5)]
        theirs = _at(make_job(owner="bob"), 10)
        for job in (*mine, theirs):
            store.create_job(job)
        newest_first = [j.job_id for j in reversed(mine)]
        assert _all_pages(store, "alice", 2) == [
            newest_first[:2],
            newest_first[2:4],
            newest_first[4:],
        ]
        # Exactly a page's worth left: the last full page says so (no empty page after it).
        assert _all_pages(store, "alice", 5) == [newest_first]
        assert _all_pages(store, "nobody", 3) == [[]]

    def test_jobs_made_in_the_same_instant_are_neither_lost_nor_repeated(
        self, store: JobStore
    ) -> None:
        same = [_at(make_job(), 0) for _ in range(4)]
        for job in same:
            store.create_job(job)
        pages = _all_pages(store, "alice", 3)
        seen = [job_id for page in pages for job_id in page]
        assert sorted(seen) == sorted(j.job_id for j in same) and len(set(seen)) == 4

    def test_style_filter_and_brief_search(self, store: JobStore) -> None:
        jobs = [
            _at(make_job(style="ink", brief="Playful GOLF mascot"), 1),
            _at(make_job(style="ink", brief="space fox"), 2),
            _at(make_job(style="pencil", brief="golf cart"), 3),
        ]
        for job in jobs:
            store.create_job(job)
        by_style = store.page_jobs("alice", limit=10, style_id="ink")
        assert [j.job_id for j in by_style.jobs] == [jobs[1].job_id, jobs[0].job_id]
        golf = store.page_jobs("alice", limit=10, query="golf")
        assert [j.job_id for j in golf.jobs] == [jobs[2].job_id, jobs[0].job_id]
        both = store.page_jobs("alice", limit=10, query="golf", style_id="ink")
        assert [j.job_id for j in both.jobs] == [jobs[0].job_id]
        first = store.page_jobs("alice", limit=1, query="golf")
        assert [j.job_id for j in first.jobs] == [jobs[2].job_id] and first.next_cursor
        rest = store.page_jobs("alice", limit=1, query="golf", cursor=first.next_cursor)
        assert [j.job_id for j in rest.jobs] == [jobs[0].job_id]

    def test_delete_job_removes_it(self, store: JobStore) -> None:
        job = make_job(key="once")
        store.create_job(job)
        assert store.delete_job(job.job_id) is True
        assert store.get_job(job.job_id) is None
        assert store.page_jobs("alice", limit=10).jobs == []
        assert store.delete_job(job.job_id) is False


class FavouriteStoreContract:
    @pytest.fixture
    def favourites(self) -> FavouriteStore:
        raise NotImplementedError

    def test_star_list_and_unstar(self, favourites: FavouriteStore) -> None:
        stars = [
            Favourite("alice", "20261201_090000-aaaaaa", 0, T0),
            Favourite("alice", "20261201_090000-aaaaaa", 2, T0 + timedelta(seconds=1)),
            Favourite("alice", "20261201_090100-bbbbbb", 1, T0 + timedelta(seconds=2)),
            Favourite("bob", "20261201_090200-cccccc", 0, T0),
        ]
        for star in stars:
            favourites.put_favourite(star)
        favourites.put_favourite(  # starring again keeps the first time
            Favourite("alice", "20261201_090000-aaaaaa", 0, T0 + timedelta(hours=1))
        )
        listed = favourites.list_favourites("alice", limit=10)
        assert [(f.job_id, f.index) for f in listed] == [
            ("20261201_090100-bbbbbb", 1),
            ("20261201_090000-aaaaaa", 2),
            ("20261201_090000-aaaaaa", 0),
        ]
        assert listed[-1].created_at == T0
        page = favourites.list_favourites("alice", limit=2)
        after = favourites.list_favourites("alice", limit=2, before=page[-1])
        assert [(f.job_id, f.index) for f in after] == [("20261201_090000-aaaaaa", 0)]
        assert favourites.favourite_indices("alice", "20261201_090000-aaaaaa") == {0, 2}
        favourites.delete_favourite("alice", "20261201_090000-aaaaaa", 2)
        favourites.delete_favourite("alice", "20261201_090000-aaaaaa", 5)  # not starred: fine
        assert favourites.favourite_indices("alice", "20261201_090000-aaaaaa") == {0}
        favourites.delete_job_favourites("alice", "20261201_090000-aaaaaa")
        assert [f.job_id for f in favourites.list_favourites("alice", limit=10)] == [
            "20261201_090100-bbbbbb"
        ]
        assert [f.job_id for f in favourites.list_favourites("bob", limit=10)] == [
            "20261201_090200-cccccc"
        ]
