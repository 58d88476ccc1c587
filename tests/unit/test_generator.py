import asyncio
import json
import re
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from sketchgen.errors import NoImageError, TransientModelError
from sketchgen.generate import GenerationConfig, ImageGenerator, RetryPolicy
from sketchgen.metadata import JobMetadata
from sketchgen.ports import ImageRequest, ImageResponse
from sketchgen.prompt import PromptCompiler
from sketchgen.prompt.render import EXAGGERATION_PROMPTS, LAYOUT_PROMPTS
from sketchgen.references import ImageRetriever
from sketchgen.schemas import Style
from tests.helpers.fakes import FakeImageModel

FAST_RETRY = RetryPolicy(max_attempts=3, initial_delay_s=0.001, max_delay_s=0.01)


def _job(style: Style, tmp_path: Path, **config: Any) -> dict[str, Any]:
    spec = PromptCompiler().compile("playful golf mascot", style)
    return {
        "prompt_spec": spec,
        "retrieval_result": ImageRetriever().retrieve(spec, style, top_k=3),
        "style": style,
        "config": GenerationConfig(output_dir=tmp_path / "out", **config),
    }


def test_sync_job_writes_sketches_and_complete_metadata(style: Style, tmp_path: Path) -> None:
    model = FakeImageModel()
    result = ImageGenerator(model, retry=FAST_RETRY).generate(
        **_job(style, tmp_path, num_images=4, seed=11, aspect_ratio="16:9")
    )
    assert re.fullmatch(r"\d{8}_\d{6}-[0-9a-f]{6}", result.job_id)
    assert result.output_dir == tmp_path / "out" / result.job_id
    assert result.output_dir.name.startswith(result.timestamp)
    assert re.fullmatch(r"\d{8}_\d{6}", result.timestamp)
    assert result.errors == {}
    assert [p.name for p in result.images] == [f"sketch_{i}.png" for i in range(4)]
    for path in result.images:
        with Image.open(path) as image:
            assert image.mode == "L" and image.size == (1024, 576)

    meta = json.loads(result.metadata_path.read_text())
    assert meta["job_id"] == result.job_id and meta["style_id"] == "test-ink"
    started = datetime.fromisoformat(meta["timestamp"])
    assert started.strftime("%Y%m%d_%H%M%S") == result.timestamp
    assert meta["config"] == {
        "num_images": 4,
        "resolution": [1024, 576],  # [w, h], as the seed's metadata.json has it
        "model_name": "gemini-2.5-flash-image",
        "seed": 11,
        "image_size": "1K",
        "aspect_ratio": "16:9",
        "allow_text": False,
    }
    assert meta["model"] == {
        "requested": "gemini-2.5-flash-image",
        "used": "gemini-2.5-flash-image",
        "adapter": "fake",
    }
    assert meta["images"] == [f"sketch_{i}.png" for i in range(4)]
    assert meta["prompt_spec"]["brief"] == "playful golf mascot"
    assert len(meta["reference_images"]) == len(meta["retrieval_scores"]) == 3
    assert meta["status"] == "done"
    pairs = {(s["variation"]["layout"], s["variation"]["exaggeration"]) for s in meta["sketches"]}
    assert len(pairs) == 4
    prompts = {r.index: r.prompt for r in model.requests}
    for i, sketch in enumerate(meta["sketches"]):
        assert sketch["index"] == i and sketch["status"] == "ok" and sketch["attempts"] == 1
        # Each sketch's prompt carried its own recorded variation.
        variation = sketch["variation"]
        assert LAYOUT_PROMPTS[variation["layout"]] in prompts[i]
        assert EXAGGERATION_PROMPTS[variation["exaggeration"]] in prompts[i]
        assert sketch["qa"]["passed"] is True
        assert sketch["latency_s"] >= 0
    assert len(set(prompts.values())) == 4


def test_metadata_with_the_older_resolution_string_still_loads(
    style: Style, tmp_path: Path
) -> None:
    result = ImageGenerator(FakeImageModel(), retry=FAST_RETRY).generate(
        **_job(style, tmp_path, num_images=1, aspect_ratio="16:9")
    )
    meta = json.loads(result.metadata_path.read_text())
    meta["config"]["resolution"] = "1024x576"
    assert JobMetadata.model_validate(meta).config.resolution == (1024, 576)


def test_one_failed_sketch_does_not_take_the_others_down(style: Style, tmp_path: Path) -> None:
    model = FakeImageModel(
        failures={1: lambda: NoImageError("blocked", finish_reason="IMAGE_SAFETY")}
    )
    result = ImageGenerator(model, retry=FAST_RETRY).generate(**_job(style, tmp_path))
    assert set(result.errors) == {1} and "blocked" in result.errors[1]
    assert len(result.images) == 3
    meta = json.loads(result.metadata_path.read_text())
    failed = meta["sketches"][1]
    assert failed["status"] == "failed" and failed["finish_reason"] == "IMAGE_SAFETY"
    assert failed["file"] is None and failed["attempts"] == 1  # permanent: not retried
    assert meta["status"] == "partial"
    assert not (result.output_dir / "sketch_1.png").exists()


def test_transient_errors_are_retried_and_counted(style: Style, tmp_path: Path) -> None:
    calls = {"n": 0}

    class Flaky(FakeImageModel):
        def generate_image(self, request: ImageRequest) -> ImageResponse:
            if request.index == 0 and calls["n"] < 2:
                calls["n"] += 1
                raise TransientModelError("unavailable", status=503)
            return super().generate_image(request)

    result = ImageGenerator(Flaky(), retry=FAST_RETRY).generate(
        **_job(style, tmp_path, num_images=2)
    )
    assert result.errors == {}
    assert result.sketches[0].attempts == 3 and result.sketches[1].attempts == 1


def test_unexpected_bug_in_one_sketch_is_recorded(style: Style, tmp_path: Path) -> None:
    class Buggy(FakeImageModel):
        def generate_image(self, request: ImageRequest) -> ImageResponse:
            if request.index == 2:
                raise ZeroDivisionError
            return super().generate_image(request)

    result = ImageGenerator(Buggy(), retry=FAST_RETRY).generate(**_job(style, tmp_path))
    assert result.errors == {2: "internal error: ZeroDivisionError"}


def test_streaming_yields_in_completion_order(style: Style, tmp_path: Path) -> None:
    import threading

    # Sketch i may answer only once sketch i+1 has been yielded (so stored): 3 first.
    yielded = {i: threading.Event() for i in range(4)}

    class Staggered(FakeImageModel):
        def generate_image(self, request: ImageRequest) -> ImageResponse:
            if request.index < 3:
                assert yielded[request.index + 1].wait(30), f"{request.index + 1} never yielded"
            return super().generate_image(request)

    stream = ImageGenerator(Staggered(), retry=FAST_RETRY).generate_streaming(
        **_job(style, tmp_path)
    )
    events = []
    for event in stream:
        assert event[1] is not None and event[1].exists()  # yielded once its PNG is stored
        events.append(event)
        yielded[event[0]].set()
    assert [e[0] for e in events] == [3, 2, 1, 0]
    assert all(path is not None and path.exists() and err is None for _, path, err in events)
    assert stream.result.metadata_path.exists()


def test_stopping_a_stream_early_still_records_every_sketch(style: Style, tmp_path: Path) -> None:
    stream = ImageGenerator(FakeImageModel(), retry=FAST_RETRY).generate_streaming(
        **_job(style, tmp_path)
    )
    iterator = iter(stream)
    next(iterator)
    iterator.close()
    assert len(stream.result.images) == 4
    assert json.loads(stream.result.metadata_path.read_text())["status"] == "done"


async def test_async_and_async_streaming(style: Style, tmp_path: Path) -> None:
    generator = ImageGenerator(
        FakeImageModel(failures={0: lambda: NoImageError("no", finish_reason="NO_IMAGE")}),
        retry=FAST_RETRY,
    )
    result = await generator.generate_async(**_job(style, tmp_path, num_images=3))
    assert set(result.errors) == {0} and len(result.images) == 2

    stream = generator.generate_streaming_async(**_job(style, tmp_path, num_images=3))
    seen = [event async for event in stream]
    assert sorted(e[0] for e in seen) == [0, 1, 2]
    assert stream.result.metadata.status == "partial"


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_all_sketches_are_in_flight_at_once(style: Style, tmp_path: Path, mode: str) -> None:
    """Every call is held until six are in flight at once: a generator that staggers or
    serialises them never gets there (a fixed model latency raced a loaded machine's start-up
    of the later calls and saw 4 in one CI run)."""
    release = threading.Event()
    model = FakeImageModel(hold=release)
    all_in: list[bool] = []

    def release_once_all_are_in() -> None:
        all_in.append(all(model.entered.acquire(timeout=30) for _ in range(6)))
        release.set()

    releaser = threading.Thread(target=release_once_all_are_in, daemon=True)
    releaser.start()
    generator = ImageGenerator(model, retry=FAST_RETRY)
    if mode == "sync":
        await asyncio.to_thread(generator.generate, **_job(style, tmp_path, num_images=6))
    else:
        await generator.generate_async(**_job(style, tmp_path, num_images=6))
    releaser.join(timeout=30)
    assert all_in == [True]  # no stagger, no serialisation
    assert model.max_in_flight == 6


def test_ctrl_c_can_only_reach_the_main_thread_while_a_stream_runs(
    style: Style, tmp_path: Path
) -> None:
    """The job's threads (its event loop, the calls' and the finisher's workers) and the
    warm-up block SIGINT: taken by one of them, Ctrl-C woke nothing and was lost while the
    main thread waited for the next sketch (tests/unit/test_cli.py's Ctrl-C test, one run in
    two on a loaded machine)."""
    import signal
    import threading

    masks: dict[str, set[int]] = {}

    class Recording(FakeImageModel):
        def prepare(self) -> None:
            masks["warm-up"] = set(signal.pthread_sigmask(signal.SIG_BLOCK, []))

        def generate_image(self, request: ImageRequest) -> ImageResponse:
            masks[threading.current_thread().name] = set(
                signal.pthread_sigmask(signal.SIG_BLOCK, [])
            )
            return super().generate_image(request)

    generator = ImageGenerator(Recording(), retry=FAST_RETRY)
    assert generator.wait_warm(timeout_s=30)
    list(generator.generate_streaming(**_job(style, tmp_path, num_images=3)))
    assert "warm-up" in masks and len(masks) >= 2, masks
    assert all(signal.SIGINT in mask for mask in masks.values()), masks
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, [])  # main: as it was


def test_two_jobs_in_one_second_get_distinct_folders(style: Style, tmp_path: Path) -> None:
    generator = ImageGenerator(FakeImageModel(), retry=FAST_RETRY)
    a = generator.generate(**_job(style, tmp_path, num_images=1))
    b = generator.generate(**_job(style, tmp_path, num_images=1))
    assert a.output_dir != b.output_dir


def test_the_plan_comes_from_the_model_table_not_the_planning_adapter(style: Style) -> None:
    """Regression (issue 12): the API plans with no key (offline adapter), the worker draws
    with one. The plan must name the real model and its reference cap either way."""
    from sketchgen.generate.offline import OfflineSketchAdapter
    from sketchgen.generate.pipeline import plan_job
    from sketchgen.schemas import RetrievalResult

    spec = PromptCompiler().compile("playful golf mascot", style)
    refs = ImageRetriever().retrieve(spec, style, top_k=3)
    many = RetrievalResult(style_id=refs.style_id, items=refs.items * 5)
    for name, model_id, cap in (
        ("flash", "gemini-2.5-flash-image", 3),
        ("pro", "gemini-3-pro-image-preview", 14),
    ):
        plans = [
            plan_job(
                job_id="20260101_000000-abcdef",
                prompt_spec=spec,
                retrieval=many,
                config=GenerationConfig(num_images=2, model_name=name, seed=1),
                model=adapter,
            )
            for adapter in (OfflineSketchAdapter(), FakeImageModel())
        ]
        for plan in plans:
            assert plan.model_id == model_id
            assert plan.request(0).model == model_id
            assert len(plan.references) == min(cap, len(many.items))


def test_warm_up_prepares_the_model_client_without_calling_it() -> None:
    from sketchgen.generate import NanoBananaAdapter
    from sketchgen.testing.gemini_server import FakeGeminiServer

    with FakeGeminiServer() as gemini:
        model = NanoBananaAdapter(api_key="test-key", base_url=gemini.url)
        generator = ImageGenerator(model, retry=RetryPolicy(max_attempts=1))
        generator.warm_up()
        assert model.gemini.built and not gemini.requests  # built, nothing sent
        client = model.client
        generator.warm_up()
        assert model.client is client  # once


def test_a_new_generator_prepares_the_model_client_in_a_thread() -> None:
    from sketchgen.generate import NanoBananaAdapter
    from sketchgen.testing.gemini_server import FakeGeminiServer

    with FakeGeminiServer() as gemini:
        model = NanoBananaAdapter(api_key="test-key", base_url=gemini.url)
        generator = ImageGenerator(model)
        assert generator.wait_warm(60)
        assert model.gemini.built and not gemini.requests  # built, not called
        idle = NanoBananaAdapter(api_key="test-key", base_url=gemini.url)
        assert not ImageGenerator(idle, warm=False).wait_warm(0)
        assert not idle.gemini.built  # left to the first call


def test_every_sketch_records_what_it_cost_from_the_one_price_table(
    style: Style, tmp_path: Path
) -> None:
    """The library prices its sketches by the service's rule, with the same function
    (sketchgen.pricing.sketch_cost_usd, ADR 0025/0061): every model call sent is charged,
    whatever it answered. A refused sketch costs its one call, a sketch re-asked once with a
    stricter prompt its two; the job records the total."""
    from sketchgen.pricing import price_per_image

    model = FakeImageModel(
        failures={
            1: lambda: NoImageError("no", finish_reason="IMAGE_SAFETY"),
            2: lambda: NoImageError("text only", finish_reason="TEXT_ONLY"),
        }
    )
    result = ImageGenerator(model, retry=FAST_RETRY).generate(
        **_job(style, tmp_path, num_images=3, model_name="gemini-2.5-flash-image")
    )
    each = price_per_image("gemini-2.5-flash-image", "1K")
    assert each > 0
    meta = json.loads(result.metadata_path.read_text())
    calls = {s["index"]: s["model_calls"] for s in meta["sketches"]}
    assert calls == {0: 1, 1: 1, 2: 2}
    costs = {s["index"]: s["cost_usd"] for s in meta["sketches"]}
    assert costs == {0: each, 1: each, 2: pytest.approx(2 * each)}
    assert meta["cost_usd"] == pytest.approx(4 * each)
    assert [s.cost_usd for s in result.sketches] == [s["cost_usd"] for s in meta["sketches"]]
