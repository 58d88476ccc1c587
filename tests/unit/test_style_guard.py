"""The style guard on real photographs and off-style renders, and through every pipeline path.

Whatever the model returns, a delivered sketch meets the visual rules: it passed as finished,
or it was redrawn as line art (``qa.converted``), or the sketch failed ``OFF_STYLE`` after one
stricter request.
"""

from __future__ import annotations

import io
import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from sketchgen.adapters.local.blob_store import LocalBlobStore
from sketchgen.adapters.local.job_store import MemoryJobStore
from sketchgen.bootstrap import assemble
from sketchgen.errors import OffStyleError
from sketchgen.finish import RULES, finish_sketch, finish_sketch_with_qa, guard_sketch, measure
from sketchgen.generate import GenerationConfig, ImageGenerator, RetryPolicy
from sketchgen.generate.offline import OfflineSketchAdapter
from sketchgen.generate.pipeline import adraw_sketch, draw_sketch, settle_sketch
from sketchgen.jobs import JobRequest
from sketchgen.metadata import JobMetadata
from sketchgen.ports import ImageRequest, ImageResponse
from sketchgen.prompt import PromptCompiler
from sketchgen.references import ImageRetriever
from sketchgen.schemas import Style, Variation
from sketchgen.services import ServiceConfig
from sketchgen.styles import StyleRegistry
from tests.helpers.corpus import FRAGMENTARY, HOPELESS, OFF_STYLE
from tests.helpers.fakes import CollectingQueue, ScriptedImageModel, drawing_png

FAST = RetryPolicy(max_attempts=2, initial_delay_s=0.001, max_delay_s=0.01)


@cache
def _image(name: str) -> bytes:
    return {**OFF_STYLE, **HOPELESS}[name]()


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


def _request(size: str = "1K", ratio: str = "1:1") -> ImageRequest:
    variation = Variation(index=0, layout="close_up", exaggeration="subtle")
    return ImageRequest(index=0, prompt="playful golf mascot, rough sketch", brief="golf",
                        variation=variation, model="flash", image_size=size,
                        aspect_ratio=ratio)  # fmt: skip


def _assert_delivered(png: bytes, qa: dict[str, object]) -> None:
    """What a delivered sketch must be: passing the rules, and its record saying so."""
    figures = measure(_pixels(png))
    assert figures.passed and qa["passed"] is True
    assert qa["dark_ratio"] == figures.dark_ratio and qa["fill_ratio"] == figures.fill_ratio


# -- the guard on its own ----------------------------------------------------------------


@pytest.mark.parametrize("name", list(OFF_STYLE))
def test_every_off_style_picture_breaks_the_rules_as_finished(name: str) -> None:
    """The corpus is genuinely off-style: the plain finisher's output fails the rules."""
    _, qa = finish_sketch_with_qa(_image(name))
    assert not qa.passed, qa


@pytest.mark.parametrize("name", sorted(set(OFF_STYLE) - FRAGMENTARY))
def test_off_style_pictures_with_shapes_are_delivered_as_line_art(name: str) -> None:
    png, qa = guard_sketch(_image(name))
    _assert_delivered(png, qa.model_dump())
    assert qa.converted == "line-art" and qa.before and qa.before["passed"] is False
    assert qa.structure is not None and qa.structure >= RULES.min_structure
    assert qa.coherence is not None and qa.coherence >= RULES.min_coherence


@pytest.mark.parametrize("name", sorted(FRAGMENTARY))
def test_pictures_that_redraw_as_scattered_dashes_are_refused(name: str) -> None:
    with pytest.raises(OffStyleError) as refused:
        guard_sketch(_image(name))
    qa = refused.value.qa
    assert qa["converted"] == "refused"
    assert qa["coherence"] < RULES.min_coherence or qa["structure"] < RULES.min_structure


def test_most_of_the_corpus_is_delivered() -> None:
    """The coherence rule refuses the fragmentary few, not the photographs in general:
    counted from what the guard does with each picture, not from the corpus's labels."""
    delivered = set()
    for name in OFF_STYLE:
        try:
            guard_sketch(_image(name))
        except OffStyleError:
            continue
        delivered.add(name)
    assert delivered == set(OFF_STYLE) - FRAGMENTARY  # the labels say what the guard does
    assert len(delivered) / len(OFF_STYLE) >= 0.75


@pytest.mark.parametrize(("size", "ratio"), [("1K", "16:9"), ("2K", "3:4"), ("4K", "1:1")])
def test_line_art_is_centred_on_clean_paper_at_every_size(size: str, ratio: str) -> None:
    png, qa = guard_sketch(_image("portrait"), size, ratio)
    pixels = _pixels(png)
    assert qa.converted and (qa.width, qa.height) == pixels.shape[::-1]
    h, w = pixels.shape
    margin_h, margin_w = round(h * RULES.border), round(w * RULES.border)
    assert (pixels[:margin_h] == 255).all() and (pixels[-margin_h:] == 255).all()
    assert (pixels[:, :margin_w] == 255).all() and (pixels[:, -margin_w:] == 255).all()
    ys, xs = np.nonzero(pixels < RULES.ink_level)
    assert abs(ys.mean() / h - 0.5) < 0.15 and abs(xs.mean() / w - 0.5) < 0.15


def test_strokes_are_drawn_at_the_rules_weight() -> None:
    """Thick outlines: a converted stroke is solid ink several pixels across, not a hairline."""
    pixels = _pixels(guard_sketch(_image("horse-on-black"))[0])
    ink = pixels < RULES.ink_level
    # Runs of ink along the rows: the typical stroke is at least the rules' 6 px at 1K.
    # Each row is padded with paper at both ends, so run starts and ends pair up in order.
    edges = np.diff(np.pad(ink, ((0, 0), (1, 1))).astype(np.int8), axis=1).ravel()
    runs = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
    assert np.median(runs) >= RULES.stroke_px_1k - 1


@pytest.mark.parametrize("name", list(HOPELESS))
def test_a_hopeless_picture_is_refused_with_its_figures(name: str) -> None:
    with pytest.raises(OffStyleError) as caught:
        guard_sketch(_image(name))
    error = caught.value
    assert error.finish_reason == "OFF_STYLE" and error.code == "off_style" and error.permanent
    assert "border white" in str(error) and error.qa["passed"] is False
    assert error.qa["converted"] == "refused"


def test_line_art_that_passes_is_untouched() -> None:
    """Byte for byte what the finisher made before the guard existed, and the same record."""
    offline = OfflineSketchAdapter()
    answers = [offline.generate_image(_request(ratio=r)).data for r in ("1:1", "16:9")]
    for data in [*answers, drawing_png(seed=3)]:
        png, qa = guard_sketch(data)
        reference, reference_qa = finish_sketch_with_qa(data)
        assert png == reference == finish_sketch(data)
        assert qa == reference_qa and qa.converted is None
        assert set(qa.model_dump(exclude_none=True)) == {
            "width", "height", "border_white_ratio", "midtone_ratio", "dark_ratio", "passed",
            "fill_ratio",
        }  # fmt: skip


# -- through the pipeline: draw, async draw, settle (batch), library, service -------------


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_photograph_is_delivered_converted(mode: str) -> None:
    model = ScriptedImageModel([_image("cup")])
    if mode == "sync":
        outcome = draw_sketch(model, _request(), FAST)
    else:
        outcome = await adraw_sketch(model, _request(), FAST)
    record = outcome.record
    assert record.status == "ok" and record.attempts == 1 and outcome.png is not None
    assert record.qa and record.qa["converted"] == "line-art"
    assert record.qa["before"]["passed"] is False
    _assert_delivered(outcome.png, record.qa)


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_hopeless_answers_get_one_stricter_request_then_fail_off_style(mode: str) -> None:
    model = ScriptedImageModel([_image("pure-noise"), _image("all-black")])
    if mode == "sync":
        outcome = draw_sketch(model, _request(), FAST)
    else:
        outcome = await adraw_sketch(model, _request(), FAST)
    record = outcome.record
    assert (record.status, record.finish_reason, record.attempts) == ("failed", "OFF_STYLE", 2)
    assert outcome.png is None and not outcome.transient
    assert record.error and "visual rules" in record.error
    assert record.qa and record.qa["passed"] is False and "dark_ratio" in record.qa
    first, second = (r.prompt for r in model.requests)
    assert second.startswith(first) and "no shading" in second


def test_a_stricter_request_that_comes_back_clean_is_delivered_as_is() -> None:
    model = ScriptedImageModel([_image("pure-noise"), drawing_png(seed=1)])
    outcome = draw_sketch(model, _request(), FAST)
    record = outcome.record
    assert (record.status, record.attempts) == ("ok", 2) and outcome.png is not None
    assert record.qa and "converted" not in record.qa
    _assert_delivered(outcome.png, record.qa)


def test_a_batch_answer_is_guarded_the_same_way() -> None:
    request = _request()
    photo = ImageResponse(data=_image("cameraman"), mime_type="image/png",
                          model_used="m", finish_reason="STOP")  # fmt: skip
    outcome = settle_sketch(request, photo)
    assert outcome.record.status == "ok" and outcome.record.qa
    assert outcome.record.qa["converted"] == "line-art"

    noise = ImageResponse(data=_image("pure-noise"), mime_type="image/png",
                          model_used="m", finish_reason="STOP")  # fmt: skip
    # Without a model to ask, the batch answer is all there is.
    alone = settle_sketch(request, noise)
    assert (alone.record.status, alone.record.finish_reason) == ("failed", "OFF_STYLE")
    # With one, the same single stricter request as a worker makes.
    model = ScriptedImageModel([drawing_png(seed=2)])
    again = settle_sketch(request, noise, model=model, policy=FAST)
    assert (again.record.status, again.record.attempts) == ("ok", 2)
    assert "no shading" in model.requests[0].prompt


def _job(style: Style, tmp_path: Path) -> dict[str, Any]:
    spec = PromptCompiler().compile("playful golf mascot", style)
    return {
        "prompt_spec": spec,
        "retrieval_result": ImageRetriever().retrieve(spec, style, top_k=3),
        "style": style,
        "config": GenerationConfig(output_dir=tmp_path / "out", num_images=3, seed=5),
    }


@pytest.mark.parametrize("mode", ["generate", "generate_async", "streaming"])
async def test_the_library_never_writes_an_ok_sketch_that_breaks_the_rules(
    mode: str, style: Style, tmp_path: Path
) -> None:
    # Every call answers with the same photograph: each sketch is converted, none is raw.
    generator = ImageGenerator(ScriptedImageModel([_image("portrait")]), retry=FAST)
    job = _job(style, tmp_path)
    if mode == "generate":
        result = generator.generate(**job)
    elif mode == "generate_async":
        result = await generator.generate_async(**job)
    else:
        stream = generator.generate_streaming(**job)
        for _ in stream:
            pass
        result = stream.result
    meta = json.loads(result.metadata_path.read_text())
    assert [s["status"] for s in meta["sketches"]] == ["ok"] * 3
    for sketch, path in zip(meta["sketches"], result.images, strict=True):
        assert sketch["qa"]["converted"] == "line-art"
        _assert_delivered(path.read_bytes(), sketch["qa"])


def test_the_service_worker_records_converted_and_off_style_sketches(
    tmp_path: Path, style_registry: StyleRegistry
) -> None:
    answers = {0: [_image("coins")], 1: [_image("pure-noise"), _image("all-black")]}

    class PerSketch(ScriptedImageModel):
        def generate_image(self, request: ImageRequest) -> ImageResponse:
            self.answers = answers[request.index]
            self.requests = [r for r in self.requests if r.index == request.index]
            return super().generate_image(request)

    service = assemble(
        jobs=MemoryJobStore(),
        blobs=LocalBlobStore(tmp_path / "blobs"),
        queue=CollectingQueue(),
        model=PerSketch([]),
        styles=style_registry,
        config=ServiceConfig(lease_s=30, lease_wait_s=0, retry=RetryPolicy(max_attempts=1)),
    )
    request = JobRequest(brief="playful golf mascot", style_id="test-ink", num_images=2)
    job, _ = service.submission.submit_job("alice", request)
    queue = service.queue
    assert isinstance(queue, CollectingQueue)
    for task in list(queue.tasks):
        assert service.worker.run_sketch(task)
    meta = JobMetadata.model_validate_json(service.blobs.get(f"jobs/{job.job_id}/metadata.json"))
    converted, failed = meta.sketches
    assert converted.status == "ok" and converted.qa and converted.qa["converted"] == "line-art"
    _assert_delivered(service.blobs.get(f"jobs/{job.job_id}/sketch_0.png"), converted.qa)
    assert (failed.status, failed.finish_reason, failed.attempts) == ("failed", "OFF_STYLE", 2)
    assert meta.status == "partial"


def test_the_rules_are_one_definition() -> None:
    """measure() judges with the same thresholds the guard draws to."""
    blank = np.full((256, 256), 255, dtype=np.uint8)
    assert measure(blank).dark_ratio == 0.0 and not measure(blank).passed
    strict = RULES.model_copy(update={"min_dark": 0.0})
    assert measure(blank, strict).passed
    with pytest.raises(ValueError, match="frozen"):
        RULES.max_dark = 0.9
