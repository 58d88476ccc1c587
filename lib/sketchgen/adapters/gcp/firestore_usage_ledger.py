"""``FirestoreUsageLedger``: per-user usage (``usage/{uid}``) and accounts (``accounts/{uid}``).

Each reservation and settlement is one optimistic write to the user's usage document (an
``update_time`` precondition, :func:`~sketchgen.adapters.gcp._firestore.optimistic_update`),
so every instance sees the same counters and two submissions can never both take the last
image or the last active-job slot. A refusal writes nothing. ``firestore.rules``: a user may
read their own account and usage; no client writes either.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sketchgen.adapters.gcp._firestore import (
    client_for,
    optimistic_update,
    optimistic_update_reading,
)
from sketchgen.errors import StorageError
from sketchgen.spend import Account, UsageDoc, UsageLedger

__all__ = ["FirestoreUsageLedger"]

T = TypeVar("T")


class FirestoreUsageLedger(UsageLedger):
    def __init__(
        self,
        client: Any | None = None,
        *,
        project: str | None = None,
        database: str = "(default)",
        usage_collection: str = "usage",
        accounts_collection: str = "accounts",
    ) -> None:
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

    def _get(self, collection: str, uid: str) -> dict[str, Any] | None:
        from google.api_core import exceptions

        try:
            snapshot = self._ref(collection, uid).get()
        except exceptions.GoogleAPICallError as error:
            raise StorageError(f"firestore: {error.message}") from error
        return snapshot.to_dict() if snapshot.exists else None

    def _update(self, uid: str, transition: Callable[[UsageDoc], tuple[UsageDoc | None, T]]) -> T:
        def transform(doc: dict[str, Any] | None) -> tuple[dict[str, Any] | None, T]:
            changed, result = transition(UsageDoc.from_doc(doc))
            return (changed.to_doc() if changed is not None else None), result

        ref = self._ref(self.usage_collection, uid)
        return optimistic_update(self.client, ref, transform, what=f"usage of {uid}")

    def _admit(
        self, uid: str, transition: Callable[[Account, UsageDoc], tuple[UsageDoc | None, T]]
    ) -> T:
        def transform(
            doc: dict[str, Any] | None, others: list[dict[str, Any] | None]
        ) -> tuple[dict[str, Any] | None, T]:
            changed, result = transition(Account.from_doc(others[0]), UsageDoc.from_doc(doc))
            return (changed.to_doc() if changed is not None else None), result

        # One round trip reads both documents (get_all); only the usage is written.
        usage = self._ref(self.usage_collection, uid)
        account = self._ref(self.accounts_collection, uid)
        return optimistic_update_reading(
            self.client, usage, [account], transform, what=f"usage of {uid}"
        )

    def usage(self, uid: str) -> UsageDoc:
        return UsageDoc.from_doc(self._get(self.usage_collection, uid))

    def account(self, uid: str) -> Account:
        return Account.from_doc(self._get(self.accounts_collection, uid))

    def set_account(self, uid: str, account: Account) -> None:
        from google.api_core import exceptions

        try:
            self._ref(self.accounts_collection, uid).set(account.to_doc())
        except exceptions.GoogleAPICallError as error:
            raise StorageError(f"firestore: {error.message}") from error
