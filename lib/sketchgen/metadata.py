"""``metadata.json``: everything needed to see how a job's sketches were made and redo them."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sketchgen._files import atomic_write_bytes
from sketchgen.schemas import PromptSpec, RetrievalResult, Variation

__all__ = [
    "JOB_ID",
    "JOB_ID_PATTERN",
    "JobMetadata",
    "ModelUsed",
    "ParentRef",
    "SketchRecord",
    "atomic_write_bytes",
    "new_job_id",
    "random_job_id",
]

SketchStatus = Literal["pending", "running", "ok", "failed", "cancelled"]


# What new_job_id (the library's folders) and random_job_id (the service's documents) make;
# anything else is not a job id (routes answer 404, messages are dropped).
JOB_ID_PATTERN = r"^(\d{8}_\d{6}-[0-9a-f]{6}|[0-9a-f]{20})$"
JOB_ID = re.compile(JOB_ID_PATTERN)


def new_job_id(now: datetime | None = None) -> str:
    """``YYYYMMDD_HHMMSS-xxxxxx``: time first so folders sort; the suffix splits a second."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d_%H%M%S")
    return f"{stamp}-{secrets.token_hex(3)}"


def random_job_id() -> str:
    """80 random bits as hex: a service job's document id. Random, not time-first: Firestore
    splits a collection by key range, and ids that grow with time all land on the last split
    (a hotspot at a high rate of new jobs)."""
    return secrets.token_hex(10)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SketchRecord(_Frozen):
    index: int
    file: str | None = None
    status: SketchStatus
    error: str | None = None
    finish_reason: str | None = None
    attempts: int = 0
    latency_s: float | None = None
    variation: Variation
    prompt: str | None = None
    seed: int | None = None
    model_used: str | None = None
    qa: dict[str, Any] | None = None
    cost_usd: float | None = None  # what the model billed for it (sketchgen.pricing)
    model_calls: int | None = None  # calls sent for it, each billed (None: not counted)


class ModelUsed(_Frozen):
    requested: str
    used: str | None
    adapter: str


class ParentRef(_Frozen):
    job_id: str
    index: int
    instruction: str | None = None


class ReferenceRecord(_Frozen):
    path: str
    sha256: str
    score: float


class ConfigRecord(_Frozen):
    num_images: int
    # [width, height] in JSON: the shape the original (seed) metadata.json has.
    resolution: tuple[int, int]
    model_name: str
    seed: int
    image_size: str
    aspect_ratio: str
    allow_text: bool

    @field_validator("resolution", mode="before")
    @classmethod
    def _older_string_form(cls, value: object) -> object:
        # Metadata written between the two shapes said "1024x576"; it still loads, so
        # those jobs can still be refined.
        if isinstance(value, str) and re.fullmatch(r"\d+x\d+", value):
            width, height = value.split("x")
            return int(width), int(height)
        return value


class JobMetadata(_Frozen):
    job_id: str
    timestamp: str
    sketchgen_version: str
    style_id: str
    prompt_spec: PromptSpec
    reference_images: list[str]
    retrieval_scores: list[float]
    references: list[ReferenceRecord]
    config: ConfigRecord
    model: ModelUsed
    images: list[str]
    sketches: list[SketchRecord]
    # "running": written as the job starts, so a folder whose process died (kill -9, power)
    # still says what it was and that it never finished.
    status: Literal["running", "done", "partial", "failed", "cancelled"]
    parent: ParentRef | None = None
    regenerated_from: str | None = None
    elapsed_s: float | None = Field(default=None)
    cost_usd: float | None = None  # the sketches' total, where they record a cost
    style_version: str | None = None

    @classmethod
    def build(
        cls,
        *,
        job_id: str,
        prompt_spec: PromptSpec,
        retrieval: RetrievalResult,
        config: ConfigRecord,
        model: ModelUsed,
        sketches: list[SketchRecord],
        parent: ParentRef | None = None,
        regenerated_from: str | None = None,
        elapsed_s: float | None = None,
        timestamp: datetime | None = None,
        style_version: str | None = None,
    ) -> JobMetadata:
        from sketchgen._version import __version__

        def rel(path: str) -> str:
            # <style_id>/references/<file>: the same under any styles root or machine.
            return "/".join(Path(path).parts[-3:])

        ordered = sorted(sketches, key=lambda s: s.index)
        ok = [s for s in ordered if s.status == "ok"]
        cancelled = [s for s in ordered if s.status == "cancelled"]
        status: Literal["running", "done", "partial", "failed", "cancelled"]
        if any(s.status in {"pending", "running"} for s in ordered):
            status = "running"
        elif len(ok) == len(ordered):
            status = "done"
        elif ok:
            status = "partial"
        elif cancelled:
            status = "cancelled"
        else:
            status = "failed"
        return cls(
            job_id=job_id,
            timestamp=(timestamp or datetime.now(UTC)).isoformat(timespec="seconds"),
            sketchgen_version=__version__,
            style_id=prompt_spec.style_id,
            prompt_spec=prompt_spec,
            reference_images=[rel(r.reference.path) for r in retrieval.items],
            retrieval_scores=[r.score for r in retrieval.items],
            references=[
                ReferenceRecord(
                    path=rel(r.reference.path), sha256=r.reference.sha256, score=r.score
                )
                for r in retrieval.items
            ],
            config=config,
            model=model,
            images=[s.file for s in ok if s.file],
            sketches=ordered,
            status=status,
            parent=parent,
            regenerated_from=regenerated_from,
            elapsed_s=elapsed_s,
            cost_usd=(
                round(sum(s.cost_usd or 0.0 for s in ordered), 6)
                if any(s.cost_usd is not None for s in ordered)
                else None
            ),
            style_version=style_version,
        )

    def to_json(self) -> bytes:
        return self.model_dump_json(indent=2).encode() + b"\n"
