"""One contract for the deployment's daily ceiling (docs/decisions/0021): memory, SQLite and
Firestore on the emulator charge shards atomically, never pass the ceiling under concurrent
instances, and start again the next UTC day."""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sketchgen.adapters.local.deployment_ceiling import (
    MemoryDeploymentCeiling,
    SqliteDeploymentCeiling,
)
from sketchgen.ceiling import MIN_SHARD_USD, DeploymentCeiling

NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)
CEILING_USD = MIN_SHARD_USD * 3  # 3 shards


@pytest.fixture(params=["memory", "sqlite", "firestore"])
def make_ceiling(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Callable[[int], DeploymentCeiling]:
    """Instances of one deployment's ceiling (the same store), each with its own dice."""
    if request.param == "memory":
        shared = MemoryDeploymentCeiling(CEILING_USD, rng=random.Random(0))
        return lambda seed: shared
    if request.param == "sqlite":
        path = tmp_path / "ceiling.sqlite3"
        return lambda seed: SqliteDeploymentCeiling(path, CEILING_USD, rng=random.Random(seed))
    request.getfixturevalue("firestore_emulator")
    from google.cloud import firestore

    from sketchgen.adapters.gcp.firestore_deployment_ceiling import FirestoreDeploymentCeiling

    project = f"ceiling-{uuid.uuid4().hex[:8]}"
    return lambda seed: FirestoreDeploymentCeiling(
        CEILING_USD, firestore.Client(project=project), rng=random.Random(seed)
    )


def test_charges_fill_the_shards_and_never_pass_the_ceiling(
    make_ceiling: Callable[[int], DeploymentCeiling],
) -> None:
    charge = 0.24
    granted: list[bool] = []
    failed: list[BaseException] = []
    lock = threading.Lock()

    def instance(seed: int) -> None:
        try:
            ceiling = make_ceiling(seed)
            for _ in range(20):
                ok = ceiling.charge(charge, now=NOW)
                with lock:
                    granted.append(ok)
        except BaseException as error:  # an instance that dies must fail the test
            failed.append(error)
            raise

    threads = [threading.Thread(target=instance, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failed and len(granted) == 4 * 20
    status = make_ceiling(99).status(now=NOW)
    assert status.shards == 3 and status.day == "2026-12-03"
    assert status.spent_usd <= CEILING_USD + 1e-9
    assert status.spent_usd == pytest.approx(sum(granted) * charge)
    assert status.charges == sum(granted)
    # Full, give or take less than one charge a shard; every later charge is refused.
    assert status.left_usd < status.shards * charge
    assert not make_ceiling(5).charge(charge, now=NOW)
    # The next UTC day starts from nothing.
    tomorrow = NOW + timedelta(days=1)
    assert make_ceiling(6).charge(charge, now=tomorrow)
    assert make_ceiling(7).status(now=tomorrow).spent_usd == pytest.approx(charge)


def test_a_charge_larger_than_any_shard_is_refused_without_writing(
    make_ceiling: Callable[[int], DeploymentCeiling],
) -> None:
    ceiling = make_ceiling(1)
    assert not ceiling.charge(CEILING_USD / 3 + 0.01, now=NOW)
    assert ceiling.status(now=NOW).charges == 0
    assert ceiling.charge(0.0, now=NOW)  # free calls always pass
