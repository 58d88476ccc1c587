"""One job's plan and one sketch's pipeline: request → model (with retry) → finisher.

Shared by the library's :class:`ImageGenerator` and the cloud worker, so a sketch is made the
same way whichever runs it.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from sketchgen.errors import ModelError, NoImageError
from sketchgen.generate.base import ImageModelAdapter
from sketchgen.generate.config import GenerationConfig
from sketchgen.generate.models import resolve_model
from sketchgen.generate.retry import RetryPolicy, acall_with_retry, call_with_retry
from sketchgen.logs import get_logger, log_context
from sketchgen.metadata import ConfigRecord, ModelUsed, ParentRef, SketchRecord
from sketchgen.ports import ImageRequest, ImageResponse, ReferencePart
from sketchgen.prompt.variation import plan_refinement_variations, plan_variations
from sketchgen.schemas import PromptSpec, RetrievalResult, Variation

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
    model: ImageModelAdapter,
    refinement: Refinement | None = None,
) -> JobPlan:
    seed = config.seed if config.seed is not None else secrets.randbelow(2**31)
    if refinement is not None:
        variations = plan_refinement_variations(refinement.variation, config.num_images, seed)
    else:
        variations = plan_variations(config.num_images, seed)
    # The model table decides, not the planning process's adapter: a job planned where no key
    # is configured (the API) is drawn by the real model where one is (the worker).
    info = resolve_model(config.model_name)
    references = tuple(
        ReferencePart(reference=item.reference, data=Path(item.reference.path).read_bytes())
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


def _finish(request: ImageRequest, response: ImageResponse) -> tuple[bytes, dict[str, object]]:
    from sketchgen.finish import finish_sketch_with_qa

    png, qa = finish_sketch_with_qa(response.data, request.image_size, request.aspect_ratio)
    return png, qa.model_dump()


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
            file=f"sketch_{request.index}.png",
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
        ),
    )


# The policy per finish reason. Safety and prohibited-content blocks (and a blocked prompt)
# fail at once with their reason: asking again is not going to change the answer. An answer
# that simply has no image gets one more try with a prompt that insists on the image.
RETRY_STRICTER = frozenset({"NO_IMAGE", "IMAGE_OTHER", "TEXT_ONLY"})
_STRICTER = (
    "\n\nImportant: answer with the image only, one single drawing, no text reply. "
    "Keep it a plain black-and-white line sketch on a white background."
)


def _stricter(request: ImageRequest) -> ImageRequest:
    return dataclasses.replace(request, prompt=request.prompt + _STRICTER)


class SyncImageModel(Protocol):
    """What :func:`draw_sketch` calls: an adapter, or one wrapped in a quota gate."""

    def generate_image(self, request: ImageRequest) -> ImageResponse: ...


def draw_sketch(
    model: SyncImageModel, request: ImageRequest, policy: RetryPolicy, job_id: str = ""
) -> SketchOutcome:
    """Make one finished sketch, or a failed record saying why. Never raises for model errors."""
    attempts = 0

    def count(n: int) -> None:
        nonlocal attempts
        attempts = n

    started = time.perf_counter()
    with log_context(job_id=job_id, sketch=request.index):
        try:
            try:
                response = call_with_retry(
                    lambda: model.generate_image(request), policy, on_attempt=count
                )
            except NoImageError as error:
                if error.finish_reason not in RETRY_STRICTER:
                    raise
                earlier = attempts
                log.info("no image (%s): one retry with a stricter prompt", error.finish_reason)
                stricter = _stricter(request)
                response = call_with_retry(
                    lambda: model.generate_image(stricter),
                    policy,
                    on_attempt=lambda n: count(earlier + n),
                )
            png, qa = _finish(request, response)
        except Exception as error:
            return _failed(request, error, attempts, started)
        return _ok(request, response, png, qa, attempts, started)


def settle_sketch(
    request: ImageRequest, result: ImageResponse | Exception, job_id: str = ""
) -> SketchOutcome:
    """Finish a model answer that came another way (a Batch API result), or record its error."""
    started = time.perf_counter()
    with log_context(job_id=job_id, sketch=request.index):
        if isinstance(result, Exception):
            return _failed(request, result, 1, started)
        try:
            png, qa = _finish(request, result)
        except Exception as error:
            return _failed(request, error, 1, started)
        return _ok(request, result, png, qa, 1, started)


async def adraw_sketch(
    model: ImageModelAdapter, request: ImageRequest, policy: RetryPolicy, job_id: str = ""
) -> SketchOutcome:
    """The async twin of :func:`draw_sketch`; the finisher runs on a worker thread."""
    import asyncio

    attempts = 0

    def count(n: int) -> None:
        nonlocal attempts
        attempts = n

    started = time.perf_counter()
    with log_context(job_id=job_id, sketch=request.index):
        try:
            try:
                response = await acall_with_retry(
                    lambda: model.agenerate_image(request), policy, on_attempt=count
                )
            except NoImageError as error:
                if error.finish_reason not in RETRY_STRICTER:
                    raise
                earlier = attempts
                log.info("no image (%s): one retry with a stricter prompt", error.finish_reason)
                stricter = _stricter(request)
                response = await acall_with_retry(
                    lambda: model.agenerate_image(stricter),
                    policy,
                    on_attempt=lambda n: count(earlier + n),
                )
            png, qa = await asyncio.to_thread(_finish, request, response)
        except Exception as error:
            return _failed(request, error, attempts, started)
        return _ok(request, response, png, qa, attempts, started)
