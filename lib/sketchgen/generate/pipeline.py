"""One job's plan and one sketch's pipeline: request → model (with retry) → finisher.

Shared by the library's :class:`ImageGenerator` and the cloud worker, so a sketch is made the
same way whichever runs it.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from sketchgen.errors import ModelError, NoImageError, OffStyleError
from sketchgen.generate.config import GenerationConfig
from sketchgen.generate.models import resolve_model
from sketchgen.generate.retry import RetryPolicy, acall_with_retry, call_with_retry
from sketchgen.layout import sketch_file
from sketchgen.logs import get_logger, log_context
from sketchgen.metadata import ConfigRecord, ModelUsed, ParentRef, SketchRecord
from sketchgen.ports import ImageModel, ImageRequest, ImageResponse, ReferencePart, SyncImageModel
from sketchgen.prompt.variation import plan_refinement_variations, plan_variations
from sketchgen.schemas import PromptSpec, ReferenceImage, RetrievalResult, Variation

__all__ = [
    "JobPlan",
    "Refinement",
    "SketchOutcome",
    "SyncImageModel",
    "adraw_sketch",
    "draw_sketch",
    "plan_job",
    "settle_sketch",
]

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Refinement:
    """Redraw one sketch of an earlier job with an instruction ("more exaggerated")."""

    parent: ParentRef
    image: bytes = field(repr=False)
    variation: Variation


@dataclass(frozen=True, slots=True)
class JobPlan:
    """Everything fixed before the first model call; the same plan always asks for the same."""

    job_id: str
    prompt_spec: PromptSpec
    retrieval: RetrievalResult
    config: GenerationConfig
    seed: int
    variations: tuple[Variation, ...]
    model_id: str
    adapter: str
    references: tuple[ReferencePart, ...] = field(repr=False)
    parent: ParentRef | None = None
    input_image: bytes | None = field(default=None, repr=False)

    def request(self, index: int) -> ImageRequest:
        variation = self.variations[index]
        return ImageRequest(
            index=index,
            prompt=self.prompt_spec.prompt_for(variation, allow_text=self.config.allow_text)
            + (f"\nChange requested: {self.parent.instruction}" if self.parent else ""),
            brief=self.prompt_spec.brief,
            variation=variation,
            model=self.model_id,
            aspect_ratio=self.config.aspect_ratio,
            image_size=self.config.image_size,
            seed=(self.seed + index) % 2**31,
            references=self.references,
            input_image=self.input_image,
            instruction=self.parent.instruction if self.parent else None,
        )

    def config_record(self) -> ConfigRecord:
        c = self.config
        return ConfigRecord(
            num_images=c.num_images,
            resolution=c.resolution,
            model_name=c.model_name,
            seed=self.seed,
            image_size=c.image_size,
            aspect_ratio=c.aspect_ratio,
            allow_text=c.allow_text,
        )

    def model_record(self, sketches: list[SketchRecord], adapter: str | None = None) -> ModelUsed:
        """``adapter``: the one that drew, where another process planned (the service)."""
        used = next((s.model_used for s in sketches if s.model_used), None)
        return ModelUsed(
            requested=self.config.model_name, used=used, adapter=adapter or self.adapter
        )


def plan_job(
    *,
    job_id: str,
    prompt_spec: PromptSpec,
    retrieval: RetrievalResult,
    config: GenerationConfig,
    model: ImageModel,
    refinement: Refinement | None = None,
    read_reference: Callable[[ReferenceImage], bytes] | None = None,
) -> JobPlan:
    """``read_reference``: where a reference's bytes come from (default: its file; a user
    style's are in the service's blob store)."""
    read = read_reference or (lambda reference: Path(reference.path).read_bytes())
    seed = config.seed if config.seed is not None else secrets.randbelow(2**31)
    if refinement is not None:
        variations = plan_refinement_variations(refinement.variation, config.num_images, seed)
    else:
        variations = plan_variations(config.num_images, seed)
    # The model table decides, not the planning process's adapter: a job planned where no key
    # is configured (the API) is drawn by the real model where one is (the worker).
    info = resolve_model(config.model_name)
    references = tuple(
        ReferencePart(reference=item.reference, data=read(item.reference))
        for item in retrieval.items[: info.max_reference_images]
    )
    return JobPlan(
        job_id=job_id,
        prompt_spec=prompt_spec,
        retrieval=retrieval,
        config=config,
        seed=seed,
        variations=variations,
        model_id=info.id,
        adapter=model.name,
        references=references,
        parent=refinement.parent if refinement else None,
        input_image=refinement.image if refinement else None,
    )


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
    else:
        # A bug must not take the job's other sketches down: record it, log the traceback.
        message, reason = f"internal error: {type(error).__name__}", None
        log.exception("sketch failed unexpectedly")
    return SketchOutcome(
        transient=isinstance(error, ModelError) and not error.permanent,
        record=SketchRecord(
            index=request.index,
            status="failed",
            error=message,
            finish_reason=reason,
            attempts=attempts,
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


def _ask_again(request: ImageRequest, asked: ImageRequest, error: Exception) -> ImageRequest:
    """The one place that decides on a second request after a bad answer: the stricter
    prompt, once, for a missing or off-style image; anything else re-raises ``error``."""
    if (
        not isinstance(error, NoImageError | OffStyleError)
        or error.finish_reason not in RETRY_STRICTER
        or asked is not request
    ):
        raise error
    log.info("%s: one retry with a stricter prompt", error.finish_reason)
    return _stricter(request)


@dataclass(slots=True)
class _Attempts:
    """Model calls so far, across the retries of the first request and the stricter one."""

    done: int = 0
    earlier: int = 0

    def count(self, n: int) -> None:
        self.done = self.earlier + n

    def next_request(self) -> None:
        self.earlier = self.done


Ask = Callable[[ImageRequest, Callable[[int], None]], ImageResponse]
AskAsync = Callable[[ImageRequest, Callable[[int], None]], Awaitable[ImageResponse]]


def _draw(
    request: ImageRequest, ask: Ask, job_id: str, *, can_ask_again: bool = True
) -> SketchOutcome:
    attempts = _Attempts()
    started = time.perf_counter()
    asked = request
    with log_context(job_id=job_id, sketch=request.index):
        while True:
            try:
                response = ask(asked, attempts.count)
                png, qa = _finish(request, response)
            except Exception as error:
                try:
                    if not can_ask_again:
                        raise
                    asked = _ask_again(request, asked, error)
                except Exception:
                    return _failed(request, error, attempts.done, started)
                attempts.next_request()
                continue
            return _ok(request, response, png, qa, attempts.done, started)


async def _adraw(request: ImageRequest, ask: AskAsync, job_id: str) -> SketchOutcome:
    """:func:`_draw` awaiting the model; the finisher and guard run on a worker thread."""
    import asyncio

    attempts = _Attempts()
    started = time.perf_counter()
    asked = request
    with log_context(job_id=job_id, sketch=request.index):
        while True:
            try:
                response = await ask(asked, attempts.count)
                png, qa = await asyncio.to_thread(_finish, request, response)
            except Exception as error:
                try:
                    asked = _ask_again(request, asked, error)
                except Exception:
                    return _failed(request, error, attempts.done, started)
                attempts.next_request()
                continue
            return _ok(request, response, png, qa, attempts.done, started)


def draw_sketch(
    model: SyncImageModel, request: ImageRequest, policy: RetryPolicy, job_id: str = ""
) -> SketchOutcome:
    """Make one finished sketch, or a failed record saying why. Never raises for model errors."""

    def ask(asked: ImageRequest, count: Callable[[int], None]) -> ImageResponse:
        return call_with_retry(lambda: model.generate_image(asked), policy, on_attempt=count)

    return _draw(request, ask, job_id)


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

    def ask(asked: ImageRequest, count: Callable[[int], None]) -> ImageResponse:
        if asked is request:
            count(1)
            if isinstance(result, Exception):
                raise result
            return result
        assert model is not None
        return call_with_retry(
            lambda: model.generate_image(asked), policy or RetryPolicy(), on_attempt=count
        )

    return _draw(request, ask, job_id, can_ask_again=model is not None)


async def adraw_sketch(
    model: ImageModel, request: ImageRequest, policy: RetryPolicy, job_id: str = ""
) -> SketchOutcome:
    """The async twin of :func:`draw_sketch`."""

    async def ask(asked: ImageRequest, count: Callable[[int], None]) -> ImageResponse:
        return await acall_with_retry(
            lambda: model.agenerate_image(asked), policy, on_attempt=count
        )

    return await _adraw(request, ask, job_id)
