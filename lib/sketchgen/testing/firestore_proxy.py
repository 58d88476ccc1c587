"""A gRPC proxy in front of the Firestore emulator that applies :class:`ContentionModel`.

Every Firestore call passes through unchanged except ``Commit`` (which carries every write:
``set``/``update``/``create``/``delete``, batches and transactions alike): a commit that writes
a document past its token bucket is refused with ABORTED, as Firestore refuses it, and its
transaction is rolled back upstream so the emulator releases its locks. Processes pointed at
the proxy (``FIRESTORE_EMULATOR_HOST``) run unchanged: the functions of ``make dev`` and the
tests' own clients alike.

Only gRPC goes through (the Python SDK's transport); the emulator's HTTP endpoints (security
rules, the Firebase JS SDK's WebChannel) stay on the emulator's own port.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc

from sketchgen.testing.contention import ABORTED_MESSAGE, ContentionModel

__all__ = ["FirestoreContentionProxy"]

_COMMIT = "/google.firestore.v1.Firestore/Commit"
_ROLLBACK = "/google.firestore.v1.Firestore/Rollback"
_SKIPPED_METADATA = ("user-agent", "grpc-")


def _identity(data: bytes) -> bytes:
    return data


def _written_documents(raw: bytes) -> tuple[list[str], Any]:
    from google.cloud.firestore_v1.types import firestore

    request = firestore.CommitRequest.deserialize(raw)
    names = []
    for write in request._pb.writes:
        kind = write.WhichOneof("operation")
        if kind == "update":
            names.append(write.update.name)
        elif kind == "delete":
            names.append(write.delete)
        elif kind == "transform":
            names.append(write.transform.document)
    return names, request


# The ignore below: grpc has no type stubs (its classes are Any)
class _Forward(grpc.GenericRpcHandler):  # type: ignore[misc]
    def __init__(self, channel: grpc.Channel, model: ContentionModel) -> None:
        self.channel = channel
        self.model = model

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        method = details.method
        if method == _COMMIT:
            return grpc.unary_unary_rpc_method_handler(
                self._commit, request_deserializer=_identity, response_serializer=_identity
            )

        def forward(requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
            call = self.channel.stream_stream(
                method, request_serializer=_identity, response_deserializer=_identity
            )(requests, metadata=_metadata(context))
            context.add_callback(call.cancel)
            try:
                yield from call
            except grpc.RpcError as error:
                if error.code() is not grpc.StatusCode.CANCELLED:
                    context.abort(error.code(), error.details() or "")

        return grpc.stream_stream_rpc_method_handler(
            forward, request_deserializer=_identity, response_serializer=_identity
        )

    def _commit(self, raw: bytes, context: grpc.ServicerContext) -> bytes:
        names, request = _written_documents(raw)
        metadata = _metadata(context)
        admitted_at = self.model.clock.monotonic()
        if not self.model.admit(names):
            if request.transaction:
                self._rollback(request, metadata)
            context.abort(grpc.StatusCode.ABORTED, ABORTED_MESSAGE)
        try:
            response: bytes = self.channel.unary_unary(
                _COMMIT, request_serializer=_identity, response_deserializer=_identity
            )(raw, metadata=metadata)
        except grpc.RpcError as error:
            context.abort(error.code(), error.details() or "")
        self.model.written(names, admitted_at=admitted_at)
        return response

    def _rollback(self, request: Any, metadata: list[tuple[str, str]]) -> None:
        from google.cloud.firestore_v1.types import firestore

        rollback = firestore.RollbackRequest(
            database=request.database, transaction=request.transaction
        )
        # If this fails, the emulator ends the abandoned transaction itself in time.
        with contextlib.suppress(grpc.RpcError):
            self.channel.unary_unary(
                _ROLLBACK,
                request_serializer=firestore.RollbackRequest.serialize,
                response_deserializer=_identity,
            )(rollback, metadata=metadata)


def _metadata(context: grpc.ServicerContext) -> list[tuple[str, str]]:
    return [
        (key, value)
        for key, value in context.invocation_metadata()
        if isinstance(value, str) and not key.startswith(_SKIPPED_METADATA)
    ]


class FirestoreContentionProxy:
    """``with FirestoreContentionProxy(upstream, port, model):`` clients use ``host``."""

    def __init__(self, upstream: str, port: int, model: ContentionModel) -> None:
        self.host = f"127.0.0.1:{port}"
        self.model = model
        self._channel = grpc.insecure_channel(upstream)
        self._server = grpc.server(
            ThreadPoolExecutor(max_workers=256, thread_name_prefix="firestore-proxy"),
            handlers=[_Forward(self._channel, model)],
            maximum_concurrent_rpcs=None,
        )
        self._server.add_insecure_port(self.host)

    def start(self) -> FirestoreContentionProxy:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(grace=None)
        self._channel.close()

    def __enter__(self) -> FirestoreContentionProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
