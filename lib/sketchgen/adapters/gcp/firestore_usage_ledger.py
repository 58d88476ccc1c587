"""``FirestoreUsageLedger``: per-user usage and accounts (``accounts/{uid}``).

A user's usage is :data:`~sketchgen.usage_shards.USAGE_SHARDS` documents, ``usage/{uid}``
(shard 0: a document from before the shards is read as it was) and
``usage/{uid}/shards/{i}``, so a busy user's reservations and settlements spread over them
instead of making one hot document (docs/decisions/0051). Each change is one read of the
account and every shard (``get_all``, one round trip) and one commit of the shards it
changes (usually one), each under its ``update_time`` precondition (or created only if still
absent): every instance sees the same counters, and two submissions can never both take the
last image or the last active-job slot. A refusal writes nothing. ``firestore.rules``: a
user may read their own account and usage; no client writes either.
"""

from __future__ import annotations

import random
from typing import Any

from sketchgen.adapters.gcp._firestore import client_for
from sketchgen.adapters.usage_ledger_base import ShardedUsageLedger
from sketchgen.clock import SYSTEM_CLOCK
from sketchgen.errors import StorageError
from sketchgen.ports import Clock
from sketchgen.spend import Account
from sketchgen.usage_shards import UsageShard

__all__ = ["FirestoreUsageLedger"]


class FirestoreUsageLedger(ShardedUsageLedger):
    def __init__(
        self,
        client: Any | None = None,
        *,
        project: str | None = None,
        database: str = "(default)",
        usage_collection: str = "usage",
        accounts_collection: str = "accounts",
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(clock=clock, rng=rng)
        self._client = client
        self._project = project
        self._database = database
        self.usage_collection = usage_collection
        self.accounts_collection = accounts_collection

    @property
    def client(self) -> Any:
        return self._client or client_for(self._project, self._database)

    def _ref(self, collection: str, uid: str) -> Any:
        return self.client.collection(collection).document(uid)

    def _shard_ref(self, uid: str, shard: int) -> Any:
        usage = self._ref(self.usage_collection, uid)
        return usage if shard == 0 else usage.collection("shards").document(str(shard))

    def _read(
        self, uid: str, *, account: bool
    ) -> tuple[Account | None, list[tuple[UsageShard | None, Any]]]:
        from google.api_core import exceptions

        refs = [self._shard_ref(uid, i) for i in range(self.shards)]
        account_ref = self._ref(self.accounts_collection, uid)
        try:
            found = {
                s.reference.path: s
                for s in self.client.get_all([*refs, *([account_ref] if account else [])])
            }
        except exceptions.GoogleAPICallError as error:
            raise StorageError(f"firestore: {error.message}") from error
        read: list[tuple[UsageShard | None, Any]] = []
        for ref in refs:
            snapshot = found.get(ref.path)
            if snapshot is None or not snapshot.exists:
                read.append((None, None))
            else:
                read.append((UsageShard.from_doc(snapshot.to_dict()), snapshot.update_time))
        who = None
        if account:
            snapshot = found.get(account_ref.path)
            doc = snapshot.to_dict() if snapshot is not None and snapshot.exists else None
            who = Account.from_doc(doc)
        return who, read

    def _commit(self, uid: str, writes: dict[int, tuple[UsageShard, Any]]) -> bool:
        from google.api_core import exceptions

        batch = self.client.batch()
        for shard, (doc, version) in sorted(writes.items()):
            ref = self._shard_ref(uid, shard)
            if version is None:
                batch.create(ref, doc.to_doc())  # fails if another writer created it first
            else:
                guard = self.client.write_option(last_update_time=version)
                batch.update(ref, doc.to_doc(), option=guard)
        try:
            batch.commit()
        except (exceptions.FailedPrecondition, exceptions.Aborted, exceptions.Conflict):
            return False
        except exceptions.GoogleAPICallError as error:
            raise StorageError(f"firestore: {error.message}") from error
        return True

    def _get(self, collection: str, uid: str) -> dict[str, Any] | None:
        from google.api_core import exceptions

        try:
            snapshot = self._ref(collection, uid).get()
        except exceptions.GoogleAPICallError as error:
            raise StorageError(f"firestore: {error.message}") from error
        return snapshot.to_dict() if snapshot.exists else None

    def account(self, uid: str) -> Account:
        return Account.from_doc(self._get(self.accounts_collection, uid))

    def set_account(self, uid: str, account: Account) -> None:
        from google.api_core import exceptions

        try:
            self._ref(self.accounts_collection, uid).set(account.to_doc())
        except exceptions.GoogleAPICallError as error:
            raise StorageError(f"firestore: {error.message}") from error
