"""Lease and redelivery timing (issue 24 item 3): the lease, a delivery's wait for another's
lease and the queue's redelivery are set in three places (Terraform's locals, `make dev`'s
topology, the library's defaults). This fails when they drift apart so that a dead worker's
sketch can no longer be taken over by the delivery that follows, or a live one can lose it."""

from __future__ import annotations

from typing import Any

import pytest

from dev.topology import DevTopology
from sketchgen.services.config import ServiceConfig
from sketchgen.settings import Settings
from tests.deploy.test_terraform_findings import SHARED, _evaluate, _load, _locals, _variables


@pytest.fixture(scope="module")
def tf_locals() -> dict[str, Any]:
    return _locals(_load(SHARED / "main.tf"))


def _numbers(tf_locals: dict[str, Any]) -> dict[str, float]:
    return {
        f"local.{k}": float(v)
        for k, v in tf_locals.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def test_in_the_cloud_the_delivery_after_the_ack_deadline_takes_a_dead_workers_sketch(
    tf_locals: dict[str, Any],
) -> None:
    numbers = _numbers(tf_locals)
    default = float(_variables(SHARED / "variables.tf")["model_timeout_s"]["default"])
    longest = _evaluate(tf_locals["model_timeout_max"], numbers)
    for model_timeout in (default, longest):
        values = {**numbers, "var.model_timeout_s": model_timeout}
        budget = _evaluate(tf_locals["worker_timeout_s"], values)
        values["local.worker_timeout_s"] = budget
        lease = _evaluate(tf_locals["lease_s"], values)
        ack_deadline = _evaluate(tf_locals["ack_deadline_s"], values)
        lease_wait = numbers["local.lease_wait_s"]
        # A live worker never loses its sketch: the lease outlives the request.
        assert lease > budget, (lease, budget)
        # A worker that died holding the lease: Pub/Sub delivers again after the ack
        # deadline; that delivery waits out the rest of the lease within its lease wait.
        assert ack_deadline + lease_wait >= lease, (ack_deadline, lease_wait, lease)
        # ... and its own wait still fits the request it runs in.
        assert lease_wait < budget


def test_on_make_dev_the_redelivery_takes_a_dead_workers_sketch() -> None:
    topology = DevTopology()
    lease_wait = float(topology.local_values()["SKETCHGEN_LEASE_WAIT_S"])
    assert topology.ack_deadline_s + lease_wait >= topology.lease_s


@pytest.mark.parametrize(
    ("lease_s", "lease_wait_s"),
    [
        (Settings.model_fields["lease_s"].default, Settings.model_fields["lease_wait_s"].default),
        (ServiceConfig().lease_s, ServiceConfig().lease_wait_s),
    ],
    ids=["settings", "service_config"],
)
def test_the_library_defaults_wait_out_a_whole_lease(lease_s: float, lease_wait_s: float) -> None:
    # With no queue deadline to lean on (the inline queue redelivers at once), a duplicate
    # delivery must be able to wait out a whole lease.
    assert lease_wait_s >= lease_s
