"""One sketch's pipeline: request → model (with retry) → finisher.

Shared by the library's :class:`ImageGenerator` and the cloud worker, so a sketch is made the
same way whichever runs it. The job's plan lives in :mod:`sketchgen.generate.plan` (its names
are re-exported here, where they were first).
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sketchgen.errors import (
    ModelError,
    NoImageError,
    OffStyleError,
    StorageError,
    TransientModelError,
)
from sketchgen.generate.plan import JobPlan, PlanImages, Refinement, VariationOf, plan_job
from sketchgen.generate.retry import RetryPolicy
from sketchgen.layout import sketch_file
from sketchgen.logs import get_logger, log_context
from sketchgen.metadata import SketchRecord
from sketchgen.ports import ImageModel, ImageRequest, ImageResponse, SyncImageModel

__all__ = [
    "JobPlan",
    "PlanImages",
    "Refinement",
    "SketchOutcome",
    "SyncImageModel",
    "VariationOf",
    "adraw_sketch",
    "draw_sketch",
    "plan_job",
    "settle_sketch",
]

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class SketchOutcome:
    record: SketchRecord
    png: bytes | None = field(default=None, repr=False)
    transient: bool = False  # failed only for want of retries: worth another delivery


def warm_up(model: ImageModel) -> None:
    """Pay a process's one-off costs of the first sketch now: the model's client (its SDK
    imported, the client built) and the finisher's imports (numpy, PIL's codecs). Safe to
    call more than once and from another thread while the caller plans the job."""
    model.prepare()
    from PIL import Image

    import sketchgen.finish  # noqa: F401 - the finisher and the style guard, numpy with them

    Image.preinit()  # the PNG/JPEG codecs, imported by the first Image.open otherwise


def _finish(request: ImageRequest, response: ImageResponse) -> tuple[bytes, dict[str, object]]:
    """Finish and guard the model's image: line art that meets the visual rules, or
    :class:`OffStyleError`."""
    from sketchgen.finish import guard_sketch

    png, qa = guard_sketch(response.data, request.image_size, request.aspect_ratio)
    if qa.converted:
        log.info("off-style image redrawn as %s (was %s)", qa.converted, qa.before)
    # Left out when unset, so a sketch that passed as finished records what it always did.
    return png, qa.model_dump(exclude_none=True)


def _ok(
    request: ImageRequest,
    response: ImageResponse,
    png: bytes,
    qa: dict[str, object],
    attempts: int,
    started: float,
) -> SketchOutcome:
    return SketchOutcome(
        png=png,
        record=SketchRecord(
            index=request.index,
            file=sketch_file(request.index),
            status="ok",
            finish_reason=response.finish_reason,
            attempts=attempts,
            model_calls=attempts,  # each sent call is charged (ADR 0025)
            latency_s=round(time.perf_counter() - started, 3),
            variation=request.variation,
            prompt=request.prompt,
            seed=request.seed,
            model_used=response.model_used,
            qa=qa,
        ),
    )


def _failed(
    request: ImageRequest, error: Exception, attempts: int, started: float
) -> SketchOutcome:
    qa = error.qa if isinstance(error, OffStyleError) else None
    if isinstance(error, ModelError):
        message, reason = str(error), error.finish_reason
        log.warning("sketch failed: %s", message)
    elif isinstance(error, StorageError):
        # The job's store stayed contended or unreachable past its own retries: not a bug,
        # and another delivery may well get through.
        message, reason = f"storage unavailable: {error}", "STORAGE_UNAVAILABLE"
        log.warning("sketch failed: %s", message)
    else:
        # A bug must not take the job's other sketches down: record it, log the traceback.
        message, reason = f"internal error: {type(error).__name__}", None
        log.exception("sketch failed unexpectedly")
    return SketchOutcome(
        transient=(isinstance(error, ModelError) and not error.permanent)
        or isinstance(error, StorageError),
        record=SketchRecord(
            index=request.index,
            status="failed",
            error=message,
            finish_reason=reason,
            attempts=attempts,
            model_calls=attempts,
            latency_s=round(time.perf_counter() - started, 3),
            variation=request.variation,
            prompt=request.prompt,
            seed=request.seed,
            qa=qa,
        ),
    )


# The policy per finish reason. Safety and prohibited-content blocks (and a blocked prompt)
# fail at once with their reason: asking again is not going to change the answer. An answer
# that simply has no image, or whose image breaks the visual rules even redrawn as line art
# (OFF_STYLE, from the style guard), gets one more try with a prompt that insists.
RETRY_STRICTER = frozenset({"NO_IMAGE", "IMAGE_OTHER", "TEXT_ONLY", "OFF_STYLE"})
_STRICTER = (
    "\n\nImportant: answer with the image only, one single drawing, no text reply. "
    "Keep it a plain black-and-white line sketch on a white background: black outlines "
    "only, no shading, no grey or solid fills, no texture, no photographic detail, "
    "no dark background."
)


def _stricter(request: ImageRequest) -> ImageRequest:
    return dataclasses.replace(request, prompt=request.prompt + _STRICTER)


@dataclass(frozen=True, slots=True)
class _Ask:
    """The next model call to make, after ``wait_s`` seconds."""

    request: ImageRequest
    wait_s: float = 0.0


class _Drawing:
    """One sketch's decisions, with no I/O in them: which model call comes next (and after
    what pause), and what the answers add up to.

    The retry policy for transient errors (:class:`RetryPolicy`, per request) and the policy
    per finish reason (one stricter request for a missing or off-style image) live here once;
    the sync and async drivers below only make the calls and the pauses.
    """

    def __init__(
        self, request: ImageRequest, policy: RetryPolicy, *, can_ask_again: bool = True
    ) -> None:
        self.request = request
        self.asked = request
        self.policy = policy
        self.can_ask_again = can_ask_again
        self.calls = 0  # model calls so far, the stricter request's included
        self.tries = 0  # calls of the current request
        self.started = time.perf_counter()
        self.rng = random.Random()

    def first(self) -> _Ask:
        return self._ask(self.request, 0.0)

    def given(self, result: ImageResponse | Exception) -> SketchOutcome | _Ask:
        """The first request's answer came another way (a Batch API result): it counts as
        the call, and a transient error in it is not retried here (the queue does that)."""
        self.first()
        self.tries = self.policy.max_attempts
        return self.failed(result) if isinstance(result, Exception) else self.answered(result)

    def answered(self, response: ImageResponse) -> SketchOutcome | _Ask:
        """Finish and guard the answer (CPU work: the async driver runs it on a thread)."""
        try:
            png, qa = _finish(self.request, response)
        except Exception as error:
            return self.failed(error)
        return _ok(self.request, response, png, qa, self.calls, self.started)

    def failed(self, error: Exception) -> SketchOutcome | _Ask:
        if isinstance(error, TransientModelError) and self.tries < self.policy.max_attempts:
            return self._ask(self.asked, self.policy.delay(self.tries, error, self.rng))
        if self._may_ask_again(error):
            log.info("%s: one retry with a stricter prompt", getattr(error, "finish_reason", ""))
            self.tries = 0
            return self._ask(_stricter(self.request), 0.0)
        return _failed(self.request, error, self.calls, self.started)

    def _may_ask_again(self, error: Exception) -> bool:
        return (
            self.can_ask_again
            and self.asked is self.request
            and isinstance(error, NoImageError | OffStyleError)
            and error.finish_reason in RETRY_STRICTER
        )

    def _ask(self, request: ImageRequest, wait_s: float) -> _Ask:
        self.asked = request
        self.calls += 1
        self.tries += 1
        return _Ask(request, wait_s)


def _drive(
    model: SyncImageModel | None,
    drawing: _Drawing,
    step: SketchOutcome | _Ask,
    sleep: Callable[[float], None] = time.sleep,
) -> SketchOutcome:
    """Make the calls ``drawing`` asks for, on this thread."""
    while isinstance(step, _Ask):
        assert model is not None, "a drawing without a model asks for no call"
        if step.wait_s:
            sleep(step.wait_s)
        try:
            response = model.generate_image(step.request)
        except Exception as error:
            step = drawing.failed(error)
        else:
            step = drawing.answered(response)
    return step


def draw_sketch(
    model: SyncImageModel,
    request: ImageRequest,
    policy: RetryPolicy,
    job_id: str = "",
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> SketchOutcome:
    """Make one finished sketch, or a failed record saying why. Never raises for model errors."""
    drawing = _Drawing(request, policy)
    with log_context(job_id=job_id, sketch=request.index):
        return _drive(model, drawing, drawing.first(), sleep)


async def adraw_sketch(
    model: ImageModel, request: ImageRequest, policy: RetryPolicy, job_id: str = ""
) -> SketchOutcome:
    """:func:`draw_sketch` awaiting the model; the finisher and guard run on a worker thread."""
    import asyncio

    drawing = _Drawing(request, policy)
    with log_context(job_id=job_id, sketch=request.index):
        step: SketchOutcome | _Ask = drawing.first()
        while isinstance(step, _Ask):
            if step.wait_s:
                await asyncio.sleep(step.wait_s)
            try:
                response = await model.agenerate_image(step.request)
            except Exception as error:
                step = drawing.failed(error)
            else:
                step = await asyncio.to_thread(drawing.answered, response)
        return step


def settle_sketch(
    request: ImageRequest,
    result: ImageResponse | Exception,
    job_id: str = "",
    *,
    model: SyncImageModel | None = None,
    policy: RetryPolicy | None = None,
) -> SketchOutcome:
    """Finish a model answer that came another way (a Batch API result), or record its error.

    With ``model``, a missing or off-style answer gets the same one stricter request as in
    :func:`draw_sketch`, made directly; without, it is recorded as it is.
    """
    drawing = _Drawing(request, policy or RetryPolicy(), can_ask_again=model is not None)
    with log_context(job_id=job_id, sketch=request.index):
        return _drive(model, drawing, drawing.given(result))
