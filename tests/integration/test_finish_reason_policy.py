"""The policy per finish reason, through the real SDK against the local Gemini server."""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from sketchgen.generate.nano_banana import NanoBananaAdapter
from sketchgen.generate.pipeline import adraw_sketch, draw_sketch
from sketchgen.generate.retry import RetryPolicy
from sketchgen.ports import ImageRequest
from sketchgen.schemas import Variation
from sketchgen.testing.gemini_server import FakeGeminiServer

FAST = RetryPolicy(max_attempts=4, initial_delay_s=0.01, max_delay_s=0.02)


@pytest.fixture
def server() -> Iterator[FakeGeminiServer]:
    with FakeGeminiServer(retry_delay_s=0.05) as gemini:
        yield gemini


def _request() -> ImageRequest:
    variation = Variation(index=0, layout="close_up", exaggeration="subtle")
    return ImageRequest(index=0, prompt="playful golf mascot, rough sketch", brief="golf",
                        variation=variation, model="flash")  # fmt: skip


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize(
    ("script", "status", "calls", "reason"),
    [
        # Blocks fail at once, with their reason, and are never asked again.
        (["IMAGE_SAFETY"], "failed", 1, "IMAGE_SAFETY"),
        (["IMAGE_PROHIBITED_CONTENT"], "failed", 1, "IMAGE_PROHIBITED_CONTENT"),
        (["prompt_blocked"], "failed", 1, "PROMPT_BLOCKED:PROHIBITED_CONTENT"),
        # No image: one more try, with a stricter prompt; a second miss is final.
        (["NO_IMAGE", "image"], "ok", 2, "STOP"),
        (["IMAGE_OTHER", "IMAGE_OTHER"], "failed", 2, "IMAGE_OTHER"),
        (["text_only", "image"], "ok", 2, "STOP"),
        # Transient errors back off (429 honouring RetryInfo) and then succeed.
        (["rate_limit", "unavailable", "image"], "ok", 3, "STOP"),
    ],
)
async def test_policy(
    server: FakeGeminiServer, mode: str, script: list[str], status: str, calls: int, reason: str
) -> None:
    adapter = NanoBananaAdapter("test-key", base_url=server.url)
    server.script(script)
    if mode == "sync":
        outcome = draw_sketch(adapter, _request(), FAST)
    else:
        outcome = await adraw_sketch(adapter, _request(), FAST)
    record = outcome.record
    assert (record.status, record.attempts, record.finish_reason) == (status, calls, reason)
    assert len(server.requests) == calls
    if calls == 2 and script[0] in {"NO_IMAGE", "IMAGE_OTHER", "text_only"}:
        first, second = (r.prompt for r in server.requests)
        assert second.startswith(first) and "image only" in second
    if status == "failed":
        assert record.error and reason.split(":")[-1] in record.error


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize(
    ("answers", "status", "calls"),
    [
        # A photograph: redrawn as line art, delivered on the first answer.
        (["portrait"], "ok", 1),
        # Hopeless twice: the stricter request, then failed OFF_STYLE with its figures.
        (["pure-noise", "all-black"], "failed", 2),
    ],
)
async def test_an_off_style_answer_is_converted_or_fails_off_style(
    server: FakeGeminiServer, mode: str, answers: list[str], status: str, calls: int
) -> None:
    from sketchgen.finish import measure
    from tests.helpers.corpus import HOPELESS, OFF_STYLE

    adapter = NanoBananaAdapter("test-key", base_url=server.url)
    for name in answers:
        server.script_image({**OFF_STYLE, **HOPELESS}[name]())
    if mode == "sync":
        outcome = draw_sketch(adapter, _request(), FAST)
    else:
        outcome = await adraw_sketch(adapter, _request(), FAST)
    record = outcome.record
    assert (record.status, record.attempts, len(server.requests)) == (status, calls, calls)
    assert record.qa is not None
    if status == "ok":
        assert outcome.png is not None and record.qa["converted"] == "line-art"
        assert (
            record.qa["passed"] and measure(np.asarray(Image.open(io.BytesIO(outcome.png)))).passed
        )
    else:
        assert record.finish_reason == "OFF_STYLE" and outcome.png is None
        assert record.qa["passed"] is False and record.error and "visual rules" in record.error
        first, second = (r.prompt for r in server.requests)
        assert second.startswith(first) and "no shading" in second
