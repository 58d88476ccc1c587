"""The per-document write limit the integration tests and bench/ run against."""

from __future__ import annotations

from sketchgen.testing.clock import FakeClock
from sketchgen.testing.contention import ContentionModel, document_kind

DOC = "projects/p/databases/(default)/documents/jobs/a"


def _write(model: ContentionModel, *documents: str) -> bool:
    admitted = model.admit(documents)
    if admitted:
        model.written(documents)
    return admitted


def test_a_burst_of_three_then_one_write_a_second() -> None:
    clock = FakeClock()
    model = ContentionModel(clock)
    assert [_write(model, DOC) for _ in range(4)] == [True, True, True, False]
    clock.advance(0.5)
    assert not _write(model, DOC)
    clock.advance(0.5)
    assert _write(model, DOC) and not _write(model, DOC)
    assert model.refused == 3
    counts = model.counts()[DOC]
    assert (counts.total, counts.max_1s, counts.max_10s) == (4, 3, 4)


def test_a_commit_is_refused_whole_and_takes_no_token() -> None:
    clock = FakeClock()
    model = ContentionModel(clock)
    other = DOC.replace("/a", "/b")
    for _ in range(3):
        assert _write(model, DOC)
    assert not _write(model, DOC, other)  # one hot document refuses the whole commit
    assert _write(model, other) and _write(model, other) and _write(model, other)
    assert model.counts()[other].total == 3
    assert model.admit([DOC.replace("/a", "/c")])  # admitted but never landed: not counted
    assert DOC.replace("/a", "/c") not in model.counts()


def test_counting_only_admits_everything() -> None:
    model = ContentionModel(FakeClock(), enforce=False)
    assert all(_write(model, DOC) for _ in range(10))
    assert model.counts()[DOC].max_1s == 10 and model.refused == 0


def test_writes_are_grouped_by_kind() -> None:
    assert document_kind(DOC + "/sketches/3") == "jobs/*/sketches/*"
    clock = FakeClock()
    model = ContentionModel(clock)
    _write(model, DOC + "/sketches/0")
    _write(model, DOC + "/sketches/1")
    _write(model, DOC + "/sketches/1")
    assert model.by_kind()["jobs/*/sketches/*"].total == 2


def test_a_write_counts_when_it_was_admitted_not_when_it_landed() -> None:
    """Commits admitted a second apart whose answers came back together (a busy emulator)
    are one a second, as the bucket admitted them."""
    clock = FakeClock()
    model = ContentionModel(clock)
    admitted = []
    for _ in range(4):
        admitted.append(clock.monotonic())
        assert model.admit([DOC])
        clock.advance(1.0)
    for at in reversed(admitted):  # all land now, the last admitted first
        model.written([DOC], admitted_at=at)
    assert model.writes()[DOC] == admitted
    counts = model.counts()[DOC]
    assert (counts.total, counts.max_1s, counts.max_10s) == (4, 1, 4)
