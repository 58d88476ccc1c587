"""The one SQLite helper (ADR 0064): several processes opening the same new file together."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

from sketchgen.adapters.local._sqlite import SqliteFile

_SCHEMA = "CREATE TABLE IF NOT EXISTS opened (pid INTEGER PRIMARY KEY);"
_OPENERS = 4
_ROUNDS = 60  # before the fix about one round in ten had an opener fail: 60 rounds catch it


def _open_and_write(path: str, start: Barrier, errors: Queue[str]) -> None:
    start.wait()  # the openers start together
    try:
        with SqliteFile(path, _SCHEMA).transaction() as db:
            db.execute("INSERT INTO opened VALUES (?)", (os.getpid(),))
    except Exception as error:  # the parent reports any failure
        errors.put(repr(error))


def test_processes_opening_one_new_file_together_all_open_it(tmp_path: Path) -> None:
    # forkserver: openers forked from a clean process, not from a test worker whose threads
    # (gRPC's among them) a fork would copy mid-state
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])  # imported once, in the server
    errors: Queue[str] = context.Queue()
    for round_ in range(_ROUNDS):
        path = tmp_path / f"round-{round_}.sqlite"
        start = context.Barrier(_OPENERS)
        openers = [
            context.Process(target=_open_and_write, args=(str(path), start, errors))
            for _ in range(_OPENERS)
        ]
        for opener in openers:
            opener.start()
        for opener in openers:
            opener.join(60)
        assert [opener.exitcode for opener in openers] == [0] * _OPENERS
        assert errors.empty(), f"round {round_}: {errors.get()}"
        with sqlite3.connect(path) as db:
            assert db.execute("SELECT count(*) FROM opened").fetchone() == (_OPENERS,)
            assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
