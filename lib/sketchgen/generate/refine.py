"""Refine one sketch of a finished job: the sketch goes back to the model with an instruction."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sketchgen.errors import InputError, NotFoundError
from sketchgen.generate.config import GenerationConfig
from sketchgen.generate.generator import GenerationResult, ImageGenerator
from sketchgen.generate.plan import Refinement
from sketchgen.layout import METADATA_FILE
from sketchgen.metadata import JobMetadata, ParentRef
from sketchgen.schemas import (
    MAX_INSTRUCTION_CHARS,
    PromptSpec,
    ReferenceImage,
    RetrievalResult,
    ScoredReference,
    Style,
    clean_text,
)
from sketchgen.styles import StyleRegistry

__all__ = [
    "MAX_INSTRUCTION_CHARS",
    "RefinementJob",
    "load_job_metadata",
    "prepare_refinement",
    "refine_sketch",
]


def load_job_metadata(job_dir: Path) -> JobMetadata:
    path = Path(job_dir) / METADATA_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"{path} does not exist: is {job_dir} a job folder?") from None
    except ValueError:
        # A NUL in the path (the OS refuses it outright): no folder can have that name.
        raise InputError(f"{str(job_dir)!r} is not a usable path", field="job_dir") from None
    try:
        return JobMetadata.model_validate_json(raw)
    except ValidationError:
        raise InputError(f"{path} is not sketchgen metadata", field="job_dir") from None


@dataclass(frozen=True, slots=True)
class RefinementJob:
    """Everything ``ImageGenerator`` needs to run a refinement, in any of its modes."""

    prompt_spec: PromptSpec
    retrieval_result: RetrievalResult
    style: Style
    config: GenerationConfig
    refinement: Refinement

    def kwargs(self) -> dict[str, Any]:
        return {
            "prompt_spec": self.prompt_spec,
            "retrieval_result": self.retrieval_result,
            "style": self.style,
            "config": self.config,
            "refinement": self.refinement,
        }


def prepare_refinement(
    job_dir: Path | str,
    index: int,
    instruction: str,
    *,
    styles: StyleRegistry | None = None,
    num_images: int = 1,
    output_dir: Path | None = None,
) -> RefinementJob:
    """Read a finished job's folder and set up the job that redraws its sketch ``index``.

    The new job keeps the style, the visual rules, the size and the chosen sketch's layout and
    exaggeration; its metadata records ``parent: {job_id, index, instruction}``.
    """
    job_dir = Path(job_dir)
    instruction = clean_text(instruction, field="instruction", max_chars=MAX_INSTRUCTION_CHARS)
    meta = load_job_metadata(job_dir)
    sketch = next((s for s in meta.sketches if s.index == index), None)
    if sketch is None or sketch.status != "ok" or not sketch.file:
        made = [s.index for s in meta.sketches if s.status == "ok"]
        raise InputError(
            f"job {meta.job_id} has no finished sketch {index}", field="index", allowed=made
        )
    styles = styles or StyleRegistry()
    style = styles.get_style(meta.style_id)
    retrieval = RetrievalResult(
        style_id=style.id,
        items=tuple(
            ScoredReference(
                reference=ReferenceImage(path=str(styles.root / ref.path), sha256=ref.sha256),
                score=ref.score,
            )
            for ref in meta.references
            if (styles.root / ref.path).is_file()
        ),
    )
    config = GenerationConfig(
        num_images=num_images,
        image_size=meta.config.image_size,
        aspect_ratio=meta.config.aspect_ratio,
        model_name=meta.config.model_name,
        seed=meta.config.seed,
        allow_text=meta.config.allow_text,
        output_dir=output_dir or job_dir.parent,
    )
    return RefinementJob(
        prompt_spec=meta.prompt_spec,
        retrieval_result=retrieval,
        style=style,
        config=config,
        refinement=Refinement(
            parent=ParentRef(job_id=meta.job_id, index=index, instruction=instruction),
            image=(job_dir / sketch.file).read_bytes(),
            variation=sketch.variation,
        ),
    )


def refine_sketch(
    job_dir: Path | str,
    index: int,
    instruction: str,
    *,
    generator: ImageGenerator | None = None,
    styles: StyleRegistry | None = None,
    num_images: int = 1,
    output_dir: Path | None = None,
) -> GenerationResult:
    """Run the refinement job set up by :func:`prepare_refinement`, next to the original."""
    job = prepare_refinement(
        job_dir, index, instruction, styles=styles, num_images=num_images, output_dir=output_dir
    )
    return (generator or ImageGenerator()).generate(**job.kwargs())
