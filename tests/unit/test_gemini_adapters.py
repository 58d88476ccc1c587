"""The one Gemini client holder and the one error translation (sketchgen.adapters.gemini),
through the real google-genai SDK against the local Gemini REST server."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from sketchgen.adapters.gemini import (
    GeminiClient,
    GeminiImageDescriber,
    GeminiTextEmbedder,
    NanaBananaAdapter,
    NanoBananaAdapter,
)
from sketchgen.errors import ModelNotFoundError, ModelRequestError, TransientModelError
from sketchgen.testing.gemini_server import FakeGeminiServer


@pytest.fixture(scope="module")
def gemini() -> Iterator[FakeGeminiServer]:
    with FakeGeminiServer() as server:
        yield server


def test_the_client_is_built_once_when_threads_race_for_it(gemini: FakeGeminiServer) -> None:
    holder = GeminiClient("test-key", base_url=gemini.url, timeout_s=5)
    assert not holder.built  # nothing built (nor the SDK imported) before first use
    start = threading.Barrier(8)
    seen: list[object] = []

    def first_use() -> None:
        start.wait()  # all eight ask at once
        seen.append(holder.sync)

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert holder.built and len({id(client) for client in seen}) == 1
    assert holder.aio is holder.sync.aio  # the async face of the same client


def test_the_image_model_describer_and_embedder_share_one_client(
    gemini: FakeGeminiServer,
) -> None:
    holder = GeminiClient("test-key", base_url=gemini.url, timeout_s=5)
    model = NanoBananaAdapter(gemini=holder)
    describer = GeminiImageDescriber(None, model="gemini-2.5-flash", gemini=holder)
    embedder = GeminiTextEmbedder(None, dimensions=8, gemini=holder)
    [vector] = embedder.embed(["a golf mascot"], task="query")
    assert len(vector) == 8
    assert model.client is holder.sync and describer.gemini is embedder.gemini is holder
    assert NanaBananaAdapter is NanoBananaAdapter  # the seed's spelling, the same class


def test_sdk_errors_are_translated_in_one_place(gemini: FakeGeminiServer) -> None:
    holder = GeminiClient("test-key", base_url=gemini.url, timeout_s=5)
    with pytest.raises(ModelRequestError, match="embeddings no-such-embedder: 404"):
        GeminiTextEmbedder(None, model="no-such-embedder", gemini=holder).embed(["x"])
    model = NanoBananaAdapter(gemini=holder)
    from sketchgen.generate.models import known_models
    from sketchgen.ports import ImageRequest
    from sketchgen.schemas import EXAGGERATIONS, LAYOUTS, Variation

    def request(prompt: str) -> ImageRequest:
        variation = Variation(index=0, layout=LAYOUTS[0], exaggeration=EXAGGERATIONS[0])
        return ImageRequest(
            index=0, prompt=prompt, brief=prompt, variation=variation, model=known_models()[0]
        )

    gemini.when("no-such-image-model", "not_found")
    gemini.when("always-busy", "unavailable")
    gemini.when("always-wrong", "bad_request")
    with pytest.raises(ModelNotFoundError):  # the image model's 404 lists the known models
        model.generate_image(request("no-such-image-model"))
    with pytest.raises(TransientModelError) as busy:
        model.generate_image(request("always-busy"))
    assert busy.value.status == 503
    with pytest.raises(ModelRequestError) as wrong:
        model.generate_image(request("always-wrong"))
    assert "400" in str(wrong.value)
    unreachable = GeminiClient("test-key", base_url="http://127.0.0.1:9", timeout_s=2)
    with pytest.raises(TransientModelError):  # nothing listens: a transport error
        GeminiTextEmbedder(None, gemini=unreachable).embed(["x"])
