"""The contention model in front of the real Firestore emulator: the Python SDK's writes
(plain, batched, in a transaction) are refused with ABORTED past 1 write/s, burst 3, per
document, exactly as the cloud refuses them; reads and listeners pass through."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from google.api_core import exceptions
from google.cloud import firestore

from dev.processes import free_port
from sketchgen.testing.clock import FakeClock
from sketchgen.testing.contention import ContentionModel
from sketchgen.testing.firestore_proxy import FirestoreContentionProxy


@pytest.fixture(scope="module")
def proxied(firestore_emulator: str) -> Iterator[tuple[firestore.Client, FakeClock]]:
    clock = FakeClock()
    model = ContentionModel(clock)
    with FirestoreContentionProxy(firestore_emulator, free_port(), model) as proxy:
        # A client finds its emulator when it is made: this one is made pointing at the proxy.
        os.environ["FIRESTORE_EMULATOR_HOST"] = proxy.host
        try:
            client = firestore.Client(project="contention")
        finally:
            os.environ["FIRESTORE_EMULATOR_HOST"] = firestore_emulator
        yield client, clock


def test_writes_past_the_bucket_are_aborted(proxied: tuple[firestore.Client, FakeClock]) -> None:
    client, clock = proxied
    ref = client.collection("hot").document(uuid.uuid4().hex)
    ref.set({"n": 0})
    ref.update({"n": 1})
    ref.update({"n": 2})
    with pytest.raises(exceptions.Aborted):
        ref.update({"n": 3})
    assert ref.get().get("n") == 2  # the refused write wrote nothing
    clock.advance(1.0)
    ref.update({"n": 3})
    batch = client.batch()
    batch.update(ref, {"n": 4})
    with pytest.raises(exceptions.Aborted):
        batch.commit()


def test_a_transaction_on_a_hot_document_is_refused_and_rolled_back(
    proxied: tuple[firestore.Client, FakeClock],
) -> None:
    client, clock = proxied
    ref = client.collection("hot").document(uuid.uuid4().hex)
    for n in range(3):
        ref.set({"n": n})

    @firestore.transactional
    def bump(transaction: firestore.Transaction) -> None:
        n = ref.get(transaction=transaction).get("n")
        transaction.update(ref, {"n": n + 1})

    with pytest.raises(ValueError, match="Failed to commit"):  # the SDK's retries all refused
        bump(client.transaction(max_attempts=2))
    clock.advance(1.0)
    bump(client.transaction(max_attempts=2))  # the refused attempts left no lock behind
    assert ref.get().get("n") == 3
