"""The real google-genai SDK against our Gemini-protocol server: every answer we must handle."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from sketchgen.errors import (
    ModelNotFoundError,
    ModelRequestError,
    NoImageError,
    TransientModelError,
)
from sketchgen.generate import GenerationConfig, ImageGenerator, RetryPolicy
from sketchgen.generate.models import known_models, resolve_model
from sketchgen.generate.nano_banana import NanaBananaAdapter, NanoBananaAdapter
from sketchgen.generate.pipeline import draw_sketch
from sketchgen.ports import ImageRequest, ReferencePart
from sketchgen.prompt import PromptCompiler
from sketchgen.references import ImageRetriever
from sketchgen.schemas import Variation
from sketchgen.styles import StyleRegistry
from sketchgen.testing.gemini_server import NO_IMAGE_REASONS, FakeGeminiServer

KEY = "test-key-not-a-secret-0123456789"


@pytest.fixture
def server() -> Iterator[FakeGeminiServer]:
    with FakeGeminiServer(latency_s=0.05, slow_s=3.0) as running:
        yield running


@pytest.fixture
def adapter(server: FakeGeminiServer) -> NanoBananaAdapter:
    return NanoBananaAdapter(KEY, base_url=server.url, timeout_s=1.5)


def _request(model: str = "gemini-2.5-flash-image", **kw: object) -> ImageRequest:
    refs = tuple(
        ReferencePart(reference=r, data=StyleRegistry().reference_bytes(r))
        for r in StyleRegistry().get_style("loose-ink-mascot").references
    )
    fields: dict[str, Any] = {
        "index": 0,
        "prompt": "a golf mascot, close-up",
        "brief": "golf mascot",
        "variation": Variation(index=0, layout="close_up", exaggeration="subtle"),
        "model": model,
        "aspect_ratio": "3:4",
        "image_size": "2K",
        "seed": 5,
        "references": refs,
        **kw,
    }
    return ImageRequest(**fields)


def test_sync_image(adapter: NanoBananaAdapter, server: FakeGeminiServer) -> None:
    response = adapter.generate_image(_request())
    assert response.finish_reason == "STOP" and response.model_used == "gemini-2.5-flash-image"
    assert Image.open(io.BytesIO(response.data)).format == "PNG"
    seen = server.requests[-1]
    # 2.5 flash has no image sizes: only the aspect ratio goes out; references are capped.
    assert seen.generation_config["imageConfig"] == {"aspectRatio": "3:4"}
    assert seen.generation_config["responseModalities"] == ["IMAGE"]
    assert seen.image_parts == 3
    assert "x-goog-api-key" not in {k.lower() for k in seen.headers}


async def test_async_image_with_sizes(adapter: NanoBananaAdapter, server: FakeGeminiServer) -> None:
    response = await adapter.agenerate_image(_request("pro"))
    assert response.model_used == "gemini-3-pro-image-preview"
    seen = server.requests[-1]
    assert seen.model == "gemini-3-pro-image-preview"
    assert seen.generation_config["imageConfig"] == {"aspectRatio": "3:4", "imageSize": "2K"}
    assert seen.image_parts == 7  # every (deduplicated) reference fits under pro's limit


@pytest.mark.parametrize("reason", NO_IMAGE_REASONS)
async def test_no_image_reasons(
    adapter: NanoBananaAdapter, server: FakeGeminiServer, reason: str
) -> None:
    server.script([reason, reason])
    for call in (adapter.generate_image, adapter.agenerate_image):
        with pytest.raises(NoImageError) as error:
            result = call(_request())
            if hasattr(result, "__await__"):
                await result
        assert error.value.finish_reason == reason and error.value.permanent


@pytest.mark.parametrize(
    ("behaviour", "reason"),
    [("prompt_blocked", "PROMPT_BLOCKED:PROHIBITED_CONTENT"), ("text_only", "TEXT_ONLY")],
)
def test_blocked_prompt_and_text_only(
    adapter: NanoBananaAdapter, server: FakeGeminiServer, behaviour: str, reason: str
) -> None:
    server.script([behaviour])
    with pytest.raises(NoImageError) as error:
        adapter.generate_image(_request())
    assert error.value.finish_reason == reason


def test_rate_limit_carries_retry_info(
    adapter: NanoBananaAdapter, server: FakeGeminiServer
) -> None:
    server.script(["rate_limit"])
    with pytest.raises(TransientModelError) as error:
        adapter.generate_image(_request())
    assert error.value.status == 429 and error.value.retry_after == 1.5


@pytest.mark.parametrize(("behaviour", "status"), [("unavailable", 503), ("internal", 500)])
async def test_server_errors_are_transient(
    adapter: NanoBananaAdapter, server: FakeGeminiServer, behaviour: str, status: int
) -> None:
    server.script([behaviour, behaviour])
    with pytest.raises(TransientModelError) as error:
        adapter.generate_image(_request())
    assert error.value.status == status
    with pytest.raises(TransientModelError):
        await adapter.agenerate_image(_request())


async def test_timeouts_are_transient(adapter: NanoBananaAdapter, server: FakeGeminiServer) -> None:
    server.script(["slow", "slow"])
    with pytest.raises(TransientModelError):
        adapter.generate_image(_request())
    with pytest.raises(TransientModelError):
        await adapter.agenerate_image(_request())


def test_other_4xx_is_permanent(adapter: NanoBananaAdapter, server: FakeGeminiServer) -> None:
    server.script(["bad_request"])
    with pytest.raises(ModelRequestError) as error:
        adapter.generate_image(_request())
    assert error.value.permanent and "INVALID_ARGUMENT" in str(error.value)


def test_unknown_model_names_the_alternatives(adapter: NanoBananaAdapter) -> None:
    with pytest.raises(ModelNotFoundError) as error:
        adapter.generate_image(_request("gemini-9-imaginary"))
    assert all(name in str(error.value) for name in known_models())


def test_the_key_never_appears_in_errors(
    adapter: NanoBananaAdapter, server: FakeGeminiServer
) -> None:
    for behaviour in ("rate_limit", "bad_request", "unavailable", "IMAGE_SAFETY", "slow"):
        server.script([behaviour])
        with pytest.raises(Exception) as error:
            adapter.generate_image(_request())
        assert KEY not in str(error.value) and KEY not in repr(error.value)
    assert KEY not in repr(adapter)


def test_one_client_is_reused(adapter: NanoBananaAdapter) -> None:
    adapter.generate_image(_request())
    first = adapter.client
    adapter.generate_image(_request())
    assert adapter.client is first
    assert NanaBananaAdapter is NanoBananaAdapter


def test_retry_waits_what_retry_info_says(
    adapter: NanoBananaAdapter, server: FakeGeminiServer
) -> None:
    server.script(["rate_limit", "image"])
    waits: list[float] = []
    outcome = draw_sketch(adapter, _request(), RetryPolicy(max_attempts=3), sleep=waits.append)
    assert outcome.record.status == "ok" and outcome.record.finish_reason == "STOP"
    assert outcome.record.attempts == 2 and len(server.requests) == 2
    assert len(waits) == 1 and 1.5 <= waits[0] <= 1.6


def test_model_table() -> None:
    assert resolve_model("flash").id == "gemini-2.5-flash-image"
    assert resolve_model("pro").supports_image_size
    successor = resolve_model("gemini-4-pro-image-preview")
    assert successor.max_reference_images == 14 and not successor.known
    unknown = resolve_model("some-future-model")
    assert unknown.id == "some-future-model" and unknown.image_sizes == ("1K",)


@pytest.mark.parametrize("mode", ["sync", "async", "stream", "stream_async"])
async def test_a_whole_job_through_the_sdk(
    server: FakeGeminiServer, tmp_path: Path, mode: str
) -> None:
    server.when("close-up", "IMAGE_SAFETY")  # one sketch of six is blocked
    server.script(["unavailable"])  # and the first call is retried
    style = StyleRegistry().get_style("loose-ink-mascot")
    spec = PromptCompiler().compile("playful golf mascot", style)
    job: dict[str, Any] = {
        "prompt_spec": spec,
        "retrieval_result": ImageRetriever().retrieve(spec, style, top_k=3),
        "style": style,
        "config": GenerationConfig(num_images=6, seed=1, output_dir=tmp_path),
    }
    generator = ImageGenerator(
        NanoBananaAdapter(KEY, base_url=server.url, timeout_s=5),
        retry=RetryPolicy(max_attempts=3, initial_delay_s=0.01),
    )
    if mode == "sync":
        result = generator.generate(**job)
    elif mode == "async":
        result = await generator.generate_async(**job)
    elif mode == "stream":
        stream = generator.generate_streaming(**job)
        assert len(list(stream)) == 6
        result = stream.result
    else:
        astream = generator.generate_streaming_async(**job)
        assert len([e async for e in astream]) == 6
        result = astream.result
    assert len(result.images) == 5 and len(result.errors) == 1
    (failed,) = [s for s in result.sketches if s.status == "failed"]
    assert failed.variation.layout == "close_up" and failed.finish_reason == "IMAGE_SAFETY"
    assert sum(s.attempts for s in result.sketches) == 7  # six calls + one retry
    assert result.metadata.model.used == "gemini-2.5-flash-image"
    for path in result.images:
        with Image.open(path) as image:
            assert image.mode == "L" and image.size == (1024, 1024)


def test_the_server_refuses_what_the_api_refuses(server: FakeGeminiServer) -> None:
    """Through the bare SDK: an imageConfig the model does not take is a 400, an unknown model
    a 404 — so a request our adapter would get wrong fails here, not first in production."""
    from google import genai
    from google.genai import errors, types

    client = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=server.url))
    cases = [
        ("gemini-2.5-flash-image", types.ImageConfig(image_size="2K"), 400, "imageSize"),
        ("gemini-3-pro-image-preview", types.ImageConfig(image_size="8K"), 400, "8K"),
        ("gemini-3-pro-image-preview", types.ImageConfig(aspect_ratio="7:3"), 400, "7:3"),
        ("offline-sketch-v1", types.ImageConfig(aspect_ratio="1:1"), 404, "offline-sketch-v1"),
    ]
    for model, image_config, code, named in cases:
        config = types.GenerateContentConfig(
            response_modalities=["IMAGE"], image_config=image_config
        )
        with pytest.raises(errors.APIError) as error:
            client.models.generate_content(model=model, contents="a fox", config=config)
        assert error.value.code == code and named in str(error.value.message)


def test_our_requests_pass_the_refusals_for_every_model_and_size(
    adapter: NanoBananaAdapter, server: FakeGeminiServer
) -> None:
    for model in known_models():
        for size in ("1K", "2K", "4K"):
            response = adapter.generate_image(_request(model, image_size=size, aspect_ratio="16:9"))
            assert response.data
    assert {r.behaviour for r in server.requests} == {"image"}


def test_refusals_end_the_sketch_as_a_permanent_clear_failure(
    adapter: NanoBananaAdapter,
) -> None:
    outcome = draw_sketch(adapter, _request("offline-sketch-v1"), RetryPolicy(max_attempts=3))
    assert outcome.record.status == "failed" and not outcome.transient
    assert outcome.record.attempts == 1  # permanent: not retried
    assert "offline-sketch-v1" in (outcome.record.error or "")
