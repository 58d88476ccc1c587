"""A job is planned once, without I/O, and its stored plan is what the worker draws and the
metadata records; the library and the service build metadata.json with one function
(docs/decisions/0060, 0061)."""

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sketchgen.adapters.local.blob_store import LocalBlobStore
from sketchgen.adapters.local.job_store import MemoryJobStore
from sketchgen.bootstrap import assemble
from sketchgen.generate import GenerationConfig, ImageGenerator
from sketchgen.generate.plan import plan_job
from sketchgen.generate.retry import RetryPolicy
from sketchgen.jobs import JobRecord, JobRequest
from sketchgen.layout import metadata_key, style_reference_key
from sketchgen.ports import BlobStore, SketchTask
from sketchgen.prompt import PromptCompiler
from sketchgen.references import ImageRetriever
from sketchgen.schemas import ReferenceImage, RetrievalResult, ScoredReference, Style
from sketchgen.services import ServiceConfig, SketchService
from sketchgen.services.stored import plan_record
from sketchgen.styles import StyleRegistry
from sketchgen.styles.owned import StyleDraft
from sketchgen.testing.clock import FakeClock
from tests.helpers.fakes import CollectingQueue, FakeImageModel, drawing_png, published

FAST = ServiceConfig(
    lease_s=30, lease_wait_s=0, max_deliveries=3, retry=RetryPolicy(max_attempts=1)
)
MODEL = "gemini-2.5-flash-image"


class GuardedBlobStore:
    """A blob store that refuses every read while ``refusing``, and lists the reads it
    served: what runs while it refuses reads no blob."""

    def __init__(self, inner: BlobStore) -> None:
        self.inner = inner
        self.refusing = False
        self.reads: list[str] = []

    def get(self, key: str) -> bytes:
        if self.refusing:
            raise AssertionError(f"read {key!r}")
        self.reads.append(key)
        return self.inner.get(key)

    def __getattr__(self, name: str) -> Any:  # put, exists, signed_url, delete…: the store's
        return getattr(self.inner, name)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.now(UTC))


@pytest.fixture
def make_service(
    tmp_path: Path, style_registry: StyleRegistry, clock: FakeClock
) -> Callable[..., SketchService]:
    def make(model: FakeImageModel | None = None, blobs: Any = None) -> SketchService:
        return assemble(
            clock=clock,
            jobs=MemoryJobStore(clock=clock),
            blobs=blobs or LocalBlobStore(tmp_path / "blobs"),
            queue=CollectingQueue(),
            model=model or FakeImageModel(),
            styles=style_registry,
            config=FAST,
        )

    return make


def _deliver_all(service: SketchService) -> None:
    tasks = list(published(service))
    published(service).clear()
    assert all(service.worker.run_sketch(task) for task in tasks)


def test_planning_reads_nothing(style: Style) -> None:
    """The plan names its references by path and hash; it never reads them (a reference whose
    file is not there is planned all the same), and the same inputs plan the same job."""
    spec = PromptCompiler().compile("playful golf mascot", style)
    missing = RetrievalResult(
        style_id=style.id,
        items=tuple(
            ScoredReference(
                reference=ReferenceImage(path=f"/nowhere/{i}.png", sha256=f"{i:064x}"),
                score=0.5,
            )
            for i in range(5)
        ),
    )

    def plan() -> Any:
        return plan_job(
            job_id="20260101_000000-abcdef",
            prompt_spec=spec,
            retrieval=missing,
            config=GenerationConfig(num_images=3, model_name=MODEL, seed=9),
            model="fake",
        )

    first = plan()
    assert first == plan()
    assert [r.path for r in first.references] == [f"/nowhere/{i}.png" for i in range(3)]
    assert first.request(0).references == ()  # no bytes in a plan
    assert len(first.prompts) == 3 and first.request(2).prompt == first.prompts[2]


def test_admission_reads_no_reference_and_each_drawing_reads_them_once(
    make_service: Callable[..., SketchService], tmp_path: Path
) -> None:
    """A job on a user style (its references in the blob store) is admitted without one
    blob read; each sketch's drawing then reads the references it sends, once."""
    blobs = GuardedBlobStore(LocalBlobStore(tmp_path / "blobs"))
    model = FakeImageModel()
    service = make_service(model, blobs=blobs)
    style = service.catalog.create_style("alice", StyleDraft(name="Team ink", rules=("ink",)))
    reference, _ = service.catalog.add_reference(
        "alice", style.style_id, drawing_png(seed=3), tags=("golf",), description="a golfer"
    )
    blobs.refusing = True
    job, _ = service.submission.submit_job(
        "alice",
        JobRequest(brief="golf mascot", style_id=style.style_id, num_images=2, model=MODEL),
    )
    assert [e.sha256 for e in job.plan.references] == [reference.sha256]
    blobs.refusing = False
    _deliver_all(service)
    done = service.jobs.get_job(job.job_id)
    assert done is not None and done.status == "done"
    assert blobs.reads == [style_reference_key(style.style_id, reference.sha256)] * 2
    assert all(
        [p.reference.sha256 for p in r.references] == [reference.sha256] for r in model.requests
    )


def test_a_reference_gone_since_planning_is_drawn_without_and_still_recorded(
    make_service: Callable[..., SketchService], style_registry: StyleRegistry
) -> None:
    """The worker draws the stored plan: a built-in reference deleted after the job was
    planned is left out of the model call (the next ones sent), not a failure; the metadata
    records what the job was planned with."""
    model = FakeImageModel()
    service = make_service(model)
    job, _ = service.submission.submit_job(
        "alice", JobRequest(brief="golf mascot", style_id="test-ink", num_images=2, model=MODEL)
    )
    assert len(job.plan.references) >= 2
    (style_registry.root / job.plan.references[0].path).unlink()
    _deliver_all(service)
    done = service.jobs.get_job(job.job_id)
    assert done is not None and done.status == "done"
    sent = [[part.reference.sha256 for part in r.references] for r in model.requests]
    kept = [e.sha256 for e in job.plan.references[1:]]
    assert sent == [kept, kept]
    metadata = json.loads(service.blobs.get(metadata_key(job.job_id)))
    assert [r["sha256"] for r in metadata["references"]] == [e.sha256 for e in job.plan.references]


def test_the_worker_draws_the_stored_plan_and_does_not_plan_again(
    make_service: Callable[..., SketchService],
) -> None:
    """A stored job's prompts and seed are what the model is asked for, as stored (not
    rendered again from the brief), and the metadata records the same."""
    model = FakeImageModel()
    service = make_service(model)
    request = JobRequest(brief="golf mascot", style_id="test-ink", num_images=2, model=MODEL)
    admitted, _ = service.submission.submit_job("alice", request)
    published(service).clear()
    stored = admitted.plan.model_copy(
        update={"seed": 1234, "prompts": ("stored prompt 0", "stored prompt 1")}
    )
    record = JobRecord.new(
        job_id="0123456789abcdef0123",
        owner_uid="alice",
        request=request,
        plan=stored,
        retention=FAST.retention,
    )
    service.jobs.create_job(record)
    service.queue.publish([SketchTask(record.job_id, i) for i in range(2)])
    _deliver_all(service)
    assert sorted((r.prompt, r.seed) for r in model.requests) == [
        ("stored prompt 0", 1234),
        ("stored prompt 1", 1235),
    ]
    metadata = json.loads(service.blobs.get(metadata_key(record.job_id)))
    assert [(s["prompt"], s["seed"]) for s in metadata["sketches"]] == [
        ("stored prompt 0", 1234),
        ("stored prompt 1", 1235),
    ]


def test_a_job_stored_before_the_plan_kept_its_prompts_reads_as_it_was_planned(
    make_service: Callable[..., SketchService],
) -> None:
    """Old documents (no ``prompts``, no ``max_references``) still draw, with the prompts
    and cap the planner derived; new documents read by an older instance (which drops the
    fields it does not know) derive the same."""
    service = make_service()
    job, _ = service.submission.submit_job(
        "alice", JobRequest(brief="golf mascot", style_id="test-ink", num_images=3, model=MODEL)
    )
    stored = job.model_dump(mode="json")
    del stored["plan"]["prompts"], stored["plan"]["max_references"]
    old = JobRecord.model_validate(stored)
    assert old.plan.prompts is None
    assert service.stored.job_plan(old) == service.stored.job_plan(job)


def test_library_and_service_metadata_are_the_same_for_the_same_job(
    make_service: Callable[..., SketchService], style: Style, tmp_path: Path
) -> None:
    """One function builds metadata.json: for the same brief, style, references and config,
    the library's and the service's differ only in what names the run (id, time, elapsed,
    latencies) and what only the service knows (the style's version)."""
    brief, seed = "playful golf mascot", 77
    spec = PromptCompiler().compile(brief, style)
    library = ImageGenerator(FakeImageModel(), retry=RetryPolicy(max_attempts=1), warm=False)
    result = library.generate(
        spec,
        ImageRetriever().retrieve(spec, style, top_k=3),
        style,
        GenerationConfig(num_images=3, model_name=MODEL, seed=seed, output_dir=tmp_path / "lib"),
    )
    service = make_service()
    job, _ = service.submission.submit_job(
        "alice",
        JobRequest(brief=brief, style_id=style.id, num_images=3, model=MODEL, seed=seed),
    )
    _deliver_all(service)
    from_library = json.loads(result.metadata_path.read_text())
    from_service = json.loads(service.blobs.get(metadata_key(job.job_id)))

    def comparable(metadata: dict[str, Any]) -> dict[str, Any]:
        kept = {
            k: v
            for k, v in metadata.items()
            if k not in {"job_id", "timestamp", "elapsed_s", "style_version"}
        }
        kept["sketches"] = [
            {k: v for k, v in s.items() if k != "latency_s"} for s in metadata["sketches"]
        ]
        return kept

    assert from_service["style_version"] and from_library["style_version"] is None
    assert comparable(from_library) == comparable(from_service)
    assert from_library["cost_usd"] == from_service["cost_usd"] > 0
    assert all(s["model_calls"] == 1 and s["prompt"] for s in from_service["sketches"])


def test_a_plan_round_trips_through_the_job_document(
    make_service: Callable[..., SketchService],
) -> None:
    """What the service stores is the plan: read back, it is the plan it made."""
    service = make_service()
    job, _ = service.submission.submit_job(
        "alice",
        JobRequest(brief="golf mascot", style_id="test-ink", num_images=2, model=MODEL, seed=5),
    )
    plan = service.stored.job_plan(job)
    assert plan_record(plan, style_version=job.plan.style_version) == job.plan
