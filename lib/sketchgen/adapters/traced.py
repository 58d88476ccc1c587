"""Spans and metrics around the ports, wired by the composition root (docs/decisions/0030).

Decorators, not edits to the services: the model call, the Storage write and the wait for a
model slot are measured where every capability reaches them (the worker, the finaliser, the
batch collection), and a service can change without losing its telemetry. Anything else is
handed through to the wrapped adapter (``__getattr__``), so they stand in for it everywhere.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sketchgen import pricing, telemetry
from sketchgen.errors import ModelError
from sketchgen.generate.base import ImageModelAdapter
from sketchgen.ports import BatchStatus, BlobStore, ImageModel, ImageRequest, ImageResponse
from sketchgen.quota import Decision, QuotaGate

__all__ = ["TracedBlobStore", "TracedImageModel", "TracedQuotaGate", "traced"]


class TracedImageModel(ImageModelAdapter):
    """Each model call a CLIENT span (model, sketch index, finish reason, what it cost) and a
    point of ``sketchgen.model.latency`` by model and finish reason."""

    def __init__(self, model: ImageModel) -> None:
        self.model = model
        self.supports_batch = model.supports_batch

    @property
    def name(self) -> str:
        return self.model.name

    def prepare(self) -> None:
        self.model.prepare()

    def generate_image(self, request: ImageRequest) -> ImageResponse:
        with _ModelCall(request) as call:
            return call.answered(self.model.generate_image(request))

    async def agenerate_image(self, request: ImageRequest) -> ImageResponse:
        with _ModelCall(request) as call:
            return call.answered(await self.model.agenerate_image(request))

    def submit_batch(self, requests: Sequence[ImageRequest], *, display_name: str) -> str:
        with telemetry.span("model.submit_batch", kind=telemetry.SpanKind.CLIENT):
            return self.model.submit_batch(requests, display_name=display_name)

    def batch_status(self, name: str) -> BatchStatus:
        return self.model.batch_status(name)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)


class _ModelCall:
    def __init__(self, request: ImageRequest) -> None:
        self.request = request
        self.finish_reason: str | None = None
        self._span = telemetry.span(
            "model.generate",
            kind=telemetry.SpanKind.CLIENT,
            model=request.model,
            sketch=request.index,
            image_size=request.image_size,
        )

    def __enter__(self) -> _ModelCall:
        self._started = time.monotonic()
        self._current = self._span.__enter__()
        return self

    def answered(self, response: ImageResponse) -> ImageResponse:
        self.finish_reason = response.finish_reason or "STOP"
        return response

    def __exit__(self, kind: Any, error: BaseException | None, traceback: Any) -> None:
        latency_s = time.monotonic() - self._started
        if isinstance(error, ModelError):
            self.finish_reason = error.finish_reason or type(error).__name__
        elif error is not None:
            self.finish_reason = type(error).__name__
        status = "ok" if error is None else "failed"
        # Charged when sent (docs/decisions/0012); here, what the answer itself was worth.
        cost = (
            pricing.price_per_image(self.request.model, self.request.image_size)
            if pricing.is_billable(status, self.finish_reason)
            else 0.0
        )
        telemetry.set_fields(self._current, finish_reason=self.finish_reason, cost_usd=cost)
        telemetry.instruments().model_latency.record(
            latency_s,
            {"model": self.request.model, "finish_reason": self.finish_reason or "unknown"},
        )
        self._span.__exit__(kind, error, traceback)


class TracedBlobStore:
    """Each write a span (``storage.put``: key, bytes); reads pass through unmeasured."""

    def __init__(self, blobs: BlobStore) -> None:
        self.blobs = blobs

    def put(self, key: str, data: bytes, content_type: str) -> None:
        with telemetry.span(
            "storage.put", kind=telemetry.SpanKind.CLIENT, blob_key=key, blob_bytes=len(data)
        ):
            self.blobs.put(key, data, content_type)

    def get(self, key: str) -> bytes:
        return self.blobs.get(key)

    def exists(self, key: str) -> bool:
        return self.blobs.exists(key)

    def signed_url(self, key: str, *, expires_s: int) -> str | None:
        return self.blobs.signed_url(key, expires_s=expires_s)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.blobs, name)


class TracedQuotaGate:
    """The wait for a model slot: a span and ``sketchgen.quota.wait`` (by model and outcome:
    admitted, or turned away to the queue). The span carries the slot granted
    (``sketchgen.quota_slot_at``, epoch seconds): its end minus the slot is how late the call
    went, and the slots in order are the schedule the gate kept. The wrapped gate decides
    everything."""

    def __init__(self, gate: QuotaGate) -> None:
        self.gate = gate
        self.policy = gate.policy
        self.clock = gate.clock

    def reserve(self, key: str, uid: str) -> Decision:
        return self.gate.reserve(key, uid)

    def acquire(self, key: str, uid: str, *, max_wait_s: float) -> float | None:
        started = self.clock.monotonic()
        with telemetry.span("quota.wait", model=key, user_id=uid) as current:
            at = self.gate.acquire(key, uid, max_wait_s=max_wait_s)
            outcome = "admitted" if at is not None else "requeued"
            telemetry.set_fields(current, quota_outcome=outcome, quota_slot_at=at)
        telemetry.instruments().quota_wait.record(
            self.clock.monotonic() - started, {"model": key, "outcome": outcome}
        )
        return at

    def hold(self, key: str, delay_s: float) -> None:
        self.gate.hold(key, delay_s)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.gate, name)


def traced(
    *, model: ImageModel, blobs: BlobStore, gate: QuotaGate | None
) -> tuple[ImageModel, BlobStore, QuotaGate | None]:
    """The ports the services get: each wrapped once (a part handed in twice is not)."""
    if not isinstance(model, TracedImageModel):
        model = TracedImageModel(model)
    if not isinstance(blobs, TracedBlobStore):
        blobs = TracedBlobStore(blobs)
    if gate is not None and not isinstance(gate, TracedQuotaGate):
        gate = TracedQuotaGate(gate)
    return model, blobs, gate
