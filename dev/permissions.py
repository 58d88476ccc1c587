"""The cloud's IAM, locally: a function process may do only what infra/functions.yaml grants it.

The emulators check no permissions, so a code path that needs a grant the deployment lacks
(the worker re-queueing a sketch on a topic it may not publish to) would first fail in
production. ``install`` puts a check at the edge of each client library, in the function
process, before the function is loaded: what the definition does not grant is refused with the
error the cloud gives there — ``PermissionDenied`` from Pub/Sub and Firestore, ``Forbidden``
from Cloud Storage — so the application's own error handling runs as it would in the cloud.

Terraform derives the real bindings from the same grants (infra/terraform/environments/_shared).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dev.definition import Grants

__all__ = ["Resources", "install"]


@dataclass(frozen=True)
class Resources:
    """The real names behind the definition's keys in this topology."""

    topics: Mapping[str, str]  # key -> projects/P/topics/NAME
    buckets: Mapping[str, str]  # key -> bucket name


def _wrap(owner: Any, name: str, check: Callable[[tuple[Any, ...], dict[str, Any]], None]) -> None:
    original = getattr(owner, name)

    def guarded(*args: Any, **kwargs: Any) -> Any:
        check(args, kwargs)
        return original(*args, **kwargs)

    # The ignore below: functools-style __wrapped__ on a plain function
    guarded.__wrapped__ = original  # type: ignore[attr-defined]
    setattr(owner, name, guarded)


def install(function: str, grants: Grants, resources: Resources) -> None:
    """Refuse, in this process, whatever ``grants`` does not allow ``function``."""
    account = f"serviceAccount:sketchgen-{function.replace('_', '-')}@local"
    _guard_pubsub(account, grants, resources)
    _guard_firestore(account, grants)
    _guard_storage(account, grants, resources)


def _guard_pubsub(account: str, grants: Grants, resources: Resources) -> None:
    from google.api_core import exceptions
    from google.cloud.pubsub_v1.publisher import client as publisher
    from google.cloud.pubsub_v1.publisher import futures

    allowed = {resources.topics[key] for key in grants.publish}
    original = publisher.Client.publish

    def publish(self: Any, topic: str, *args: Any, **kwargs: Any) -> Any:
        if topic in allowed:
            return original(self, topic, *args, **kwargs)
        # In the cloud the refusal arrives through the publish future, as here.
        future = futures.Future()
        future.set_exception(
            exceptions.PermissionDenied(
                f"User not authorized to perform this action. ({account} may not publish "
                f"to {topic}: infra/functions.yaml grants it no publish on that topic)"
            )
        )
        return future

    # The ignore below: the SDK method is replaced on purpose (a permission check)
    publisher.Client.publish = publish  # type: ignore[method-assign]


def _guard_firestore(account: str, grants: Grants) -> None:
    from google.api_core import exceptions
    from google.cloud.firestore_v1.services.firestore import client as gapic

    def refuse(what: str) -> Callable[[tuple[Any, ...], dict[str, Any]], None]:
        def check(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            raise exceptions.PermissionDenied(
                f"Missing or insufficient permissions. ({account} may not {what} Firestore "
                "documents: infra/functions.yaml)"
            )

        return check

    if grants.firestore != "read_write":
        for method in ("commit", "batch_write", "begin_transaction"):
            _wrap(gapic.FirestoreClient, method, refuse("write"))
    if grants.firestore is None:
        for method in ("get_document", "batch_get_documents", "run_query", "listen"):
            _wrap(gapic.FirestoreClient, method, refuse("read"))


def _guard_storage(account: str, grants: Grants, resources: Resources) -> None:
    from google.api_core import exceptions
    from google.cloud.storage import blob

    access = {resources.buckets[key]: level for key, level in grants.buckets.items()}

    def needs(level: str, permission: str) -> Callable[[tuple[Any, ...], dict[str, Any]], None]:
        def check(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            target = args[0]  # the Blob
            have = access.get(target.bucket.name)
            if have == "read_write" or (have == "read" and level == "read"):
                return
            raise exceptions.Forbidden(
                f"{account} does not have {permission} access to the Google Cloud Storage "
                f"object {target.bucket.name}/{target.name}."
            )

        return check

    _wrap(blob.Blob, "_prep_and_do_upload", needs("read_write", "storage.objects.create"))
    _wrap(blob.Blob, "delete", needs("read_write", "storage.objects.delete"))
    _wrap(blob.Blob, "_prep_and_do_download", needs("read", "storage.objects.get"))
