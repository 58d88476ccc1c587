"""Lease and redelivery timing (issue 24 item 3), defined once: the numbers in
``infra/functions.yaml`` (``delivery:``), the arithmetic in :mod:`sketchgen.timing`. Terraform
repeats the arithmetic in its locals and ``make dev`` derives its values from the same numbers;
this fails when any copy drifts, or when the timing no longer lets the delivery after a dead
worker's take its sketch over (docs/decisions/0054)."""

from __future__ import annotations

from typing import Any

import pytest

from dev.definition import load_definition
from dev.topology import DevTopology
from sketchgen.services.config import ServiceConfig
from sketchgen.settings import Settings
from sketchgen.timing import DeliveryTiming, queue_delivery_attempts
from tests.deploy.test_terraform_findings import (
    SHARED,
    _evaluate,
    _load,
    _locals,
    _variables,
    terraform_timing,
)

DEFINITION = load_definition()


@pytest.fixture(scope="module")
def main() -> dict[str, Any]:
    return _load(SHARED / "main.tf")


@pytest.fixture(scope="module")
def tf_locals(main: dict[str, Any]) -> dict[str, Any]:
    return _locals(main)


def _model_timeouts() -> list[float]:
    default = float(_variables(SHARED / "variables.tf")["model_timeout_s"]["default"])
    longest = DEFINITION.timing(model_timeout_s=default).model_timeout_max_s
    return [default, 30.0, longest]


@pytest.mark.parametrize("model_timeout_s", _model_timeouts())
def test_terraform_derives_what_sketchgen_timing_derives(
    tf_locals: dict[str, Any], model_timeout_s: float
) -> None:
    timing = DEFINITION.timing(model_timeout_s=model_timeout_s)
    assert terraform_timing(tf_locals, model_timeout_s) == {
        "ack_deadline_max_s": timing.ack_deadline_max_s,
        "lease_wait_s": timing.lease_wait_s,
        "quota_wait_s": timing.quota_wait_s,
        "worker_overhead_s": timing.worker_overhead_s,
        "model_timeout_max": timing.model_timeout_max_s,
        "worker_timeout_s": timing.worker_timeout_s,
        "ack_deadline_s": timing.ack_deadline_s,
        "lease_s": timing.lease_s,
    }
    assert timing.problems() == []


def test_the_lease_is_short_and_renewed() -> None:
    """The deployed lease (docs/decisions/0069): a delivery after a worker that died right
    after its claim outwaits all of it, and the live worker renews it three times a lease —
    one write on the sketch's document every 20 s, far below Firestore's one a second."""
    timing = DEFINITION.timing(model_timeout_s=120)
    assert timing.lease_s <= timing.minimum_backoff_s + timing.lease_wait_s
    assert timing.lease_s < timing.worker_timeout_s  # it could not outlive a draw unrenewed
    assert (
        timing.lease_renew_s
        == timing.lease_s / 3
        == ServiceConfig(lease_s=timing.lease_s).lease_renew_s
    )
    assert timing.lease_renew_s >= 1.0


@pytest.mark.parametrize("model_timeout_s", _model_timeouts())
def test_the_worker_holds_a_sketch_for_the_delivery_budget_after_its_claim(
    model_timeout_s: float,
) -> None:
    """A hung work gives its sketch back (docs/decisions/0073) once it has run for all a
    delivery may spend after its claim: the worker derives that bound from the deployed
    variables by the same rule as the timing, and every work of a delivery fits in it."""
    timing = DEFINITION.timing(model_timeout_s=model_timeout_s)
    settings = Settings(
        model_timeout_s=model_timeout_s,
        quota_wait_s=timing.quota_wait_s,
        worker_overhead_s=timing.worker_overhead_s,
    )
    worker = ServiceConfig(
        quota_wait_s=settings.quota_wait_s,
        model_timeout_s=settings.model_timeout_s,
        worker_overhead_s=settings.worker_overhead_s,
    )
    assert worker.hold_max_s == timing.hold_max_s
    assert timing.worker_timeout_s == timing.lease_wait_s + timing.hold_max_s
    assert timing.hold_max_s >= timing.quota_wait_s + 2 * timing.model_timeout_s
    assert timing.lease_renew_s < timing.lease_s < timing.hold_max_s


def test_terraform_takes_the_numbers_from_the_definition(
    main: dict[str, Any], tf_locals: dict[str, Any]
) -> None:
    assert tf_locals["delivery"] == "${local.definition.delivery}"
    env = tf_locals["env_values"]
    assert env["SKETCHGEN_LEASE_S"] == "${tostring(local.lease_s)}"
    assert env["SKETCHGEN_LEASE_WAIT_S"] == "${tostring(local.lease_wait_s)}"
    assert env["SKETCHGEN_QUOTA_WAIT_S"] == "${tostring(local.quota_wait_s)}"
    assert env["SKETCHGEN_WORKER_OVERHEAD_S"] == "${tostring(local.worker_overhead_s)}"
    assert tf_locals["sizing"]["sketch_worker"]["timeout_seconds"] == "${local.worker_timeout_s}"
    topic = next(b['"sketch_topic"'] for b in main["module"] if '"sketch_topic"' in b)
    push = topic["push"]
    assert push["ack_deadline_seconds"] == "${local.ack_deadline_s}"
    assert push["minimum_backoff"] == '"${local.delivery.minimum_backoff_s}s"'
    assert push["maximum_backoff"] == '"${local.delivery.maximum_backoff_s}s"'
    # The queue's dead-letter limit over the worker's own count of draws.
    for draws in (5, 10, 40):
        pushes = _evaluate(
            tf_locals["subscription_delivery_attempts"], {"var.max_delivery_attempts": draws}
        )
        assert pushes == queue_delivery_attempts(draws)


def test_a_drifted_definition_is_refused() -> None:
    numbers = dict(DEFINITION.delivery)
    with pytest.raises(ValueError, match="missing"):
        DeliveryTiming.from_definition(
            {k: v for k, v in numbers.items() if k != "lease_s"}, model_timeout_s=120
        )
    # A lease that outlasts the next delivery's wait (the old one, as long as the request and
    # never renewed: 450 s), a budget past Pub/Sub's ceiling.
    late = DeliveryTiming.from_definition({**numbers, "lease_s": 450}, model_timeout_s=120)
    assert any("cannot wait out" in p for p in late.problems())
    assert not any(
        "cannot wait out" in p
        for p in DeliveryTiming.from_definition(
            {**numbers, "lease_s": numbers["minimum_backoff_s"] + numbers["lease_wait_s"]},
            model_timeout_s=120,
        ).problems()
    )
    slow = DeliveryTiming.from_definition(numbers, model_timeout_s=300)
    assert any("ack deadline" in p for p in slow.problems())


def test_make_dev_runs_with_the_definitions_timing() -> None:
    topology = DevTopology()
    timing = DEFINITION.timing(model_timeout_s=topology.model_timeout_s)
    values = topology.local_values()
    assert float(values["SKETCHGEN_MODEL_TIMEOUT_S"]) == topology.model_timeout_s
    assert float(values["SKETCHGEN_LEASE_S"]) == timing.lease_s
    assert float(values["SKETCHGEN_LEASE_WAIT_S"]) == timing.lease_wait_s
    assert float(values["SKETCHGEN_QUOTA_WAIT_S"]) == timing.quota_wait_s
    assert float(values["SKETCHGEN_WORKER_OVERHEAD_S"]) == timing.worker_overhead_s
    assert topology.ack_deadline_s == timing.ack_deadline_s
    assert topology.retry_backoff_s == (timing.minimum_backoff_s, timing.maximum_backoff_s)
    # The push bridge plays the retry policy: a refusal comes back after the backoff.
    assert [topology.redelivery_s(n) for n in (1, 2, 3)] == [timing.backoff_s(n) for n in (1, 2, 3)]
    assert topology.redelivery_s(1) > 0


def test_make_dev_uses_the_clouds_model_timeout() -> None:
    default = float(_variables(SHARED / "variables.tf")["model_timeout_s"]["default"])
    assert DevTopology().model_timeout_s == default


@pytest.mark.parametrize(
    ("lease_s", "lease_wait_s"),
    [
        (Settings.model_fields["lease_s"].default, Settings.model_fields["lease_wait_s"].default),
        (ServiceConfig().lease_s, ServiceConfig().lease_wait_s),
    ],
    ids=["settings", "service_config"],
)
def test_the_library_defaults_wait_out_a_whole_lease(lease_s: float, lease_wait_s: float) -> None:
    # Without the deployment's variables (`sketchgen serve`: the inline queue redelivers after
    # half a second), a duplicate delivery must be able to wait out a whole lease.
    assert lease_wait_s >= lease_s
