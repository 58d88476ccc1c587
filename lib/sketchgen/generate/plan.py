"""A job's plan, made once and without I/O, and the one ``metadata.json`` built from it.

:func:`plan_job` decides everything fixed before the first model call — every sketch's
layout, exaggeration, prompt and seed, the size, the model, and the references by id and
hash — from inputs the caller already holds. It reads nothing: the references' bytes are read
where a sketch is drawn (:func:`read_images`), once per drawing. The service stores the plan
with the job when it admits it, and the worker, the Batch API collection and the finaliser
read that stored plan back instead of planning again (ADR 0060).

:func:`job_metadata` builds ``metadata.json`` (and prices every sketch, through the one
function of :mod:`sketchgen.pricing`) from a plan and the sketches' records, for the library
and the service alike (ADR 0061).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sketchgen.generate.config import GenerationConfig
from sketchgen.generate.models import resolve_model
from sketchgen.metadata import ConfigRecord, JobMetadata, ModelUsed, ParentRef, SketchRecord
from sketchgen.ports import ImageModel, ImageRequest, ReferencePart
from sketchgen.pricing import sketch_cost_usd
from sketchgen.prompt.variation import (
    plan_layout_variations,
    plan_refinement_variations,
    plan_variations,
)
from sketchgen.schemas import PromptSpec, ReferenceImage, RetrievalResult, Variation

__all__ = [
    "NO_IMAGES",
    "JobPlan",
    "PlanImages",
    "Refinement",
    "VariationOf",
    "job_metadata",
    "plan_job",
    "read_images",
    "sketch_prompts",
]


@dataclass(frozen=True, slots=True)
class Refinement:
    """Redraw one sketch of an earlier job with an instruction ("more exaggerated").

    ``image`` is the sketch to redraw, already read by the caller; the plan keeps only
    ``parent`` (the service stores the image beside the job)."""

    parent: ParentRef
    image: bytes = field(repr=False)
    variation: Variation


@dataclass(frozen=True, slots=True)
class VariationOf:
    """New sketches of an earlier one (issue 27): its layout and seed kept, drawn afresh (no
    input image, no instruction); ``parent`` links the new job to it."""

    parent: ParentRef
    variation: Variation


@dataclass(frozen=True, slots=True)
class PlanImages:
    """The bytes a drawing sends beside the prompt: read where the sketch is drawn, never
    part of the plan."""

    references: tuple[ReferencePart, ...] = field(default=(), repr=False)
    input_image: bytes | None = field(default=None, repr=False)


NO_IMAGES = PlanImages()


@dataclass(frozen=True, slots=True)
class JobPlan:
    """Everything fixed before the first model call; the same plan always asks for the same.

    A value: no bytes, no handles. ``retrieval`` lists every reference the job was planned
    with (``metadata.json`` records them all); the first ``max_references`` are drawn with.
    """

    job_id: str
    prompt_spec: PromptSpec
    retrieval: RetrievalResult
    config: GenerationConfig
    seed: int
    variations: tuple[Variation, ...]
    prompts: tuple[str, ...]
    model_id: str
    adapter: str
    max_references: int
    parent: ParentRef | None = None
    batch: bool = False  # drawn through the Batch API (billed at its price)

    @property
    def references(self) -> tuple[ReferenceImage, ...]:
        """The references sent to the model, by path and hash (the model's cap applied)."""
        return tuple(item.reference for item in self.retrieval.items[: self.max_references])

    @property
    def redraws_input(self) -> bool:
        """A refinement redraws its parent's sketch; a variation draws afresh."""
        return self.parent is not None and self.parent.instruction is not None

    def seed_for(self, index: int) -> int:
        return (self.seed + index) % 2**31

    def request(self, index: int, images: PlanImages = NO_IMAGES) -> ImageRequest:
        """Sketch ``index``'s model call, with the ``images`` read for it."""
        return ImageRequest(
            index=index,
            prompt=self.prompts[index],
            brief=self.prompt_spec.brief,
            variation=self.variations[index],
            model=self.model_id,
            aspect_ratio=self.config.aspect_ratio,
            image_size=self.config.image_size,
            seed=self.seed_for(index),
            references=images.references,
            input_image=images.input_image,
            instruction=self.parent.instruction if self.parent else None,
        )

    def sketch(self, index: int, **result: object) -> SketchRecord:
        """Sketch ``index``'s record: what the plan fixed, and ``result`` (status, error, …)."""
        return SketchRecord.model_validate(
            {
                "index": index,
                "variation": self.variations[index],
                "prompt": self.prompts[index],
                "seed": self.seed_for(index),
                **result,
            }
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

    def cost_usd(self, model_calls: int) -> float:
        """What ``model_calls`` calls for one of this job's sketches cost (ADR 0025)."""
        return sketch_cost_usd(self.model_id, self.config.image_size, model_calls, batch=self.batch)


def sketch_prompts(
    prompt_spec: PromptSpec,
    variations: Iterable[Variation],
    *,
    allow_text: bool,
    instruction: str | None = None,
) -> tuple[str, ...]:
    """Every sketch's complete prompt: the spec rendered for its variation, and a
    refinement's instruction."""
    change = f"\nChange requested: {instruction}" if instruction else ""
    return tuple(prompt_spec.prompt_for(v, allow_text=allow_text) + change for v in variations)


def plan_job(
    *,
    job_id: str,
    prompt_spec: PromptSpec,
    retrieval: RetrievalResult,
    config: GenerationConfig,
    model: ImageModel | str,
    refinement: Refinement | None = None,
    variation_of: VariationOf | None = None,
) -> JobPlan:
    """Plan a job. No I/O: the references are named by path and hash, their bytes read
    where the sketches are drawn. ``model``: the planning adapter (or its name), recorded;
    the model table, not the adapter, decides the model and its reference cap."""
    seed = config.seed if config.seed is not None else secrets.randbelow(2**31)
    if refinement is not None:
        variations = plan_refinement_variations(refinement.variation, config.num_images, seed)
    elif variation_of is not None:
        variations = plan_layout_variations(variation_of.variation, config.num_images)
    else:
        variations = plan_variations(config.num_images, seed)
    # The model table decides, not the planning process's adapter: a job planned where no key
    # is configured (the API) is drawn by the real model where one is (the worker).
    info = resolve_model(config.model_name)
    parent = refinement.parent if refinement else variation_of.parent if variation_of else None
    return JobPlan(
        job_id=job_id,
        prompt_spec=prompt_spec,
        retrieval=retrieval,
        config=config,
        seed=seed,
        variations=variations,
        prompts=sketch_prompts(
            prompt_spec,
            variations,
            allow_text=config.allow_text,
            instruction=parent.instruction if parent else None,
        ),
        model_id=info.id,
        adapter=model if isinstance(model, str) else model.name,
        max_references=info.max_reference_images,
        parent=parent,
    )


def read_images(
    plan: JobPlan,
    read: Callable[[ReferenceImage], bytes | None],
    input_image: bytes | None = None,
) -> PlanImages:
    """The bytes to draw ``plan``'s sketches with: its references in order, each read once
    by ``read`` (None: gone, drawn without it and the next one taken), up to the cap."""
    parts: list[ReferencePart] = []
    for item in plan.retrieval.items:
        if len(parts) >= plan.max_references:
            break
        data = read(item.reference)
        if data is not None:
            parts.append(ReferencePart(reference=item.reference, data=data))
    return PlanImages(references=tuple(parts), input_image=input_image)


def job_metadata(
    plan: JobPlan,
    sketches: Iterable[SketchRecord],
    *,
    timestamp: datetime,
    elapsed_s: float | None = None,
    drawn_by: str | None = None,
    regenerated_from: str | None = None,
    style_version: str | None = None,
) -> JobMetadata:
    """``metadata.json`` of ``plan``'s job, for the library and the service alike.

    Every sketch that counts its model calls is priced here (``cost_usd`` = calls × the price
    of a call, :func:`sketchgen.pricing.sketch_cost_usd`) and the job's total follows.
    ``drawn_by``: the adapter that drew, where it is not the planner's (the service);
    ``regenerated_from`` and ``style_version``: what only the service knows.
    """
    records = sorted(
        (
            s
            if s.model_calls is None
            else s.model_copy(update={"cost_usd": plan.cost_usd(s.model_calls)})
            for s in sketches
        ),
        key=lambda s: s.index,
    )
    return JobMetadata.build(
        job_id=plan.job_id,
        prompt_spec=plan.prompt_spec,
        retrieval=plan.retrieval,
        config=plan.config_record(),
        model=plan.model_record(records, drawn_by),
        sketches=records,
        parent=plan.parent,
        regenerated_from=regenerated_from,
        elapsed_s=elapsed_s,
        timestamp=timestamp,
        style_version=style_version,
    )
