"""A local server that speaks the Gemini REST protocol, for tests, benchmarks and ``make dev``.

The real google-genai SDK talks to it through ``GOOGLE_GEMINI_BASE_URL`` (or
``http_options.base_url``), so the whole SDK path — serialisation, errors, async — is
exercised without a key or the network.

What a request gets is decided, in order, by: the FIFO ``script``; the first ``when`` rule
whose text occurs in the prompt; the random fault shares (``p_*``, seeded); the requests-per
-minute limit (a token bucket refilled at ``rpm_limit / 60`` a second that holds
``rpm_burst_s`` seconds of it: short bursts pass, a faster sustained rate gets 429s); and
finally ``default``. Behaviours::

    image          an off-spec PNG (colour strokes, grey gradient, speckle) sized by imageConfig
    rate_limit     429 RESOURCE_EXHAUSTED with RetryInfo (retry_delay_s)
    unavailable    503 UNAVAILABLE          internal     500 INTERNAL
    bad_request    400 INVALID_ARGUMENT     slow         sleeps slow_s, then an image
    held           waits until ``release_held()`` (or ``held_timeout_s``), then an image: a
                   call kept in flight for exactly as long as a test needs (cancel mid-call)
    IMAGE_SAFETY | IMAGE_PROHIBITED_CONTENT | NO_IMAGE | IMAGE_OTHER   a candidate, no image
    prompt_blocked promptFeedback.blockReason, no candidates
    text_only      a STOP candidate with only a text part
    scripted_image the next image given to ``script_image`` (a photograph, a shaded render:
                   whatever a test needs the model to have drawn)

Besides the image models: ``:batchEmbedContents`` / ``:embedContent`` on ``embedding_models``
(deterministic vectors from the text, ``outputDimensionality`` honoured) and
``generateContent`` on ``text_models`` (one sentence about the image sent), each recorded in
``embedded``; any other model is a 404, as the API answers.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import io
import json
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["FakeGeminiServer", "RecordedRequest", "refuse"]

NO_IMAGE_REASONS = ("IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "NO_IMAGE", "IMAGE_OTHER")
_PATH = re.compile(
    r"^/(v1beta|v1|v1alpha)/models/([^/:]+):"
    r"(generateContent|streamGenerateContent|batchGenerateContent|embedContent|batchEmbedContents)$"
)
_BATCH_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch"
_BATCH_PATH = re.compile(r"^/(v1beta|v1|v1alpha)/batches/([A-Za-z0-9_-]+)(:cancel)?$")
_SIZES = {"1K": 1024, "2K": 2048, "4K": 4096}
DEFAULT_MODELS = (
    "gemini-2.5-flash-image",
    "gemini-3.1-flash-image-preview",
    "gemini-3-pro-image-preview",
)
DEFAULT_EMBEDDING_MODELS = ("gemini-embedding-001",)
# Text models: they describe an image in words (a reference image's description at upload).
DEFAULT_TEXT_MODELS = ("gemini-2.5-flash",)
_EMBEDDING_DEFAULT_DIMENSIONS = 3072


@dataclass(frozen=True)
class RecordedRequest:
    model: str
    prompt: str
    image_parts: int
    generation_config: dict[str, Any]
    headers: dict[str, str]
    behaviour: str
    at: float


@functools.lru_cache(maxsize=16)
def _paper(size: tuple[int, int]) -> Image.Image:
    """The gradient paper every image of a size starts from, made once: made per answer (in
    float64, ~40 MB of temporaries at 1024 px) it was most of this server's CPU in a burst of
    120 answers, more than the service it stands in front of (docs/BENCHMARKS.md, Burst)."""
    gradient = np.linspace(170, 240, size[1], dtype=np.float32)[:, None] * np.ones((1, size[0]))
    pixels = np.stack([gradient, gradient * 0.98, gradient * 0.93], axis=-1).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


def offspec_png(prompt: str, aspect_ratio: str, image_size: str, seed: int) -> bytes:
    """What a real model might return before finishing: colour, gradient paper, speckle.

    Drawn at a modest size (the finisher scales): the server must stay fast under load.
    """
    w_ratio, h_ratio = (int(p) for p in aspect_ratio.split(":"))
    long_side = min(_SIZES.get(image_size, 1024), 1024)
    if w_ratio >= h_ratio:
        size = (long_side, max(1, round(long_side * h_ratio / w_ratio)))
    else:
        size = (max(1, round(long_side * w_ratio / h_ratio)), long_side)
    rng = random.Random(f"{seed}|{prompt}")
    image = _paper(size).copy()
    draw = ImageDraw.Draw(image)
    s = min(size) / 1024
    cx, cy = size[0] * rng.uniform(0.35, 0.65), size[1] * rng.uniform(0.4, 0.6)
    colour = (rng.randrange(0, 160), rng.randrange(0, 120), rng.randrange(0, 200))
    r = rng.uniform(140, 260) * s
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=colour, width=max(3, int(14 * s)))
    draw.line((cx - r, cy + r * 1.4, cx + r, cy + r * 0.9), fill=colour, width=max(3, int(12 * s)))
    noise = np.asarray(image).copy()
    count = size[0] * size[1] // 80
    ys = np.random.default_rng(seed).integers(0, size[1], count)
    xs = np.random.default_rng(seed + 1).integers(0, size[0], count)
    noise[ys, xs] = 110
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


class _Server(ThreadingHTTPServer):
    # A class attribute: the constructor listens, so one set on the instance comes too late
    # (it was, and the backlog stayed at 5: in a burst of 32 calls the rest were dropped and
    # their clients retried 1 s and 3 s later; docs/BENCHMARKS.md, Burst).
    request_queue_size = 1024
    daemon_threads = True


@dataclass
class FakeGeminiServer:
    latency_s: float = 0.0  # a call, from its arrival to its answer (the drawing included)
    host: str = "127.0.0.1"
    port: int = 0
    models: tuple[str, ...] = DEFAULT_MODELS
    embedding_models: tuple[str, ...] = DEFAULT_EMBEDDING_MODELS
    text_models: tuple[str, ...] = DEFAULT_TEXT_MODELS
    default: str = "image"
    retry_delay_s: float = 1.5
    slow_s: float = 5.0
    p_unavailable: float = 0.0
    p_no_image: float = 0.0
    rpm_limit: int | None = None
    rpm_burst_s: float = 5.0
    seed: int = 0
    batch_delay_s: float = 0.0  # a batch stays PENDING/RUNNING this long before it succeeds
    # What a batch's age is measured on: a test hands in a fake clock and advances it.
    clock: Callable[[], float] = time.monotonic
    held_timeout_s: float = 120.0  # a ``held`` call answers by itself after this long
    # Each request's model and behaviour appended here as a JSON line, as it is decided: what
    # a test reads of a stand-in running in a process of its own (``--record``).
    record_to: Path | None = None
    requests: list[RecordedRequest] = field(default_factory=list)
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    _script: deque[str] = field(default_factory=deque)
    _rules: list[list[Any]] = field(default_factory=list)
    _images: deque[bytes] = field(default_factory=deque)
    # (model, taskType, outputDimensionality, text) of every text embedded, in order.
    embedded: list[tuple[str, str | None, int | None, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(self.seed)
        self._tokens: float | None = None  # the rpm bucket; full at the first request
        self._refilled = 0.0
        self._server: ThreadingHTTPServer | None = None
        self._release = threading.Event()
        self._arrived = threading.Condition(self._lock)  # notified as each request arrives
        self.answered: list[RecordedRequest] = []  # requests whose answer has been sent

    def release_held(self) -> None:
        """Let every ``held`` call (now and later) answer."""
        self._release.set()

    # -- control -------------------------------------------------------------------------

    def script(self, behaviours: list[str]) -> None:
        with self._lock:
            self._script.extend(behaviours)

    def script_image(self, data: bytes) -> None:
        """Answer the next scripted request with exactly these image bytes."""
        with self._lock:
            self._images.append(data)
            self._script.append("scripted_image")

    def _next_image(self) -> bytes:
        with self._lock:
            return self._images.popleft()

    def when(self, text: str, behaviour: str, times: int | None = None) -> None:
        with self._lock:
            self._rules.append([text, behaviour, times])

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self._images.clear()
            self._rules.clear()
            self.requests.clear()
            self.batches.clear()
            self.answered.clear()
            self.embedded.clear()
            self._tokens = None
        self._release.clear()

    def calls(self, text: str | None = None) -> int:
        with self._lock:
            return self._count(text)

    def _count(self, text: str | None) -> int:
        return sum(1 for r in self.requests if text is None or text in r.prompt)

    def wait_for_calls(self, count: int, text: str | None = None, *, timeout_s: float = 30) -> int:
        """Block until ``count`` requests (with ``text`` in the prompt) have arrived, or
        ``timeout_s`` has passed; returns how many have. A test's synchronisation point, so it
        never sleeps to guess when a call has reached the model."""
        with self._arrived:
            self._arrived.wait_for(lambda: self._count(text) >= count, timeout=timeout_s)
            return self._count(text)

    @property
    def url(self) -> str:
        assert self._server is not None, "start the server first"
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self) -> FakeGeminiServer:
        server = _Server((self.host, self.port), _handler_for(self))
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True, name="fake-gemini").start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeGeminiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- decisions -----------------------------------------------------------------------

    def _choose(self, prompt: str) -> str:
        with self._lock:
            if self._script:
                return self._script.popleft()
            for rule in self._rules:
                text, behaviour, times = rule
                if text in prompt and (times is None or times > 0):
                    if times is not None:
                        rule[2] = times - 1
                    return str(behaviour)
            roll = self._rng.random()
            if roll < self.p_unavailable:
                return "unavailable"
            if roll < self.p_unavailable + self.p_no_image:
                return "NO_IMAGE"
            if self.rpm_limit is not None and not self._take_token():
                return "rate_limit"
            return self.default

    def _take_token(self) -> bool:
        now, rate = time.monotonic(), self.rpm_limit / 60 if self.rpm_limit else 0.0
        capacity = max(1.0, rate * self.rpm_burst_s)
        if self._tokens is None:
            self._tokens = capacity
        else:
            self._tokens = min(capacity, self._tokens + (now - self._refilled) * rate)
        self._refilled = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    def answer(
        self, model: str, body: dict[str, Any], headers: dict[str, str], *, sleep: bool = True
    ) -> tuple[int, dict[str, Any]]:
        parts = [p for c in body.get("contents", []) for p in c.get("parts", [])]
        prompt = "\n".join(p["text"] for p in parts if "text" in p)
        config = body.get("generationConfig", {})
        refusal = refuse(model, config, parts) if model in self.models else None
        if model not in self.models:
            behaviour = "not_found"
        elif refusal is not None:
            behaviour = "invalid_argument"
        else:
            behaviour = self._choose(prompt)
        recorded = RecordedRequest(
            model=model,
            prompt=prompt,
            image_parts=sum(1 for p in parts if "inlineData" in p),
            generation_config=config,
            headers=headers,
            behaviour=behaviour,
            at=time.monotonic(),
        )
        with self._lock:
            self.requests.append(recorded)
            self._arrived.notify_all()
            if self.record_to is not None:
                with self.record_to.open("a") as record:
                    record.write(json.dumps({"model": model, "behaviour": behaviour}) + "\n")
        if refusal is not None:
            return 400, _error(400, "INVALID_ARGUMENT", refusal)
        # The answer (its image drawn) is made first and sent once the latency has passed
        # since the request arrived: a call takes latency_s, drawing included. Drawn after
        # the wait, a burst of calls answered together was late by their drawings in turn
        # (6 images: ~0.15 s on the last, in every first-call benchmark).
        answer = _respond(self, model, behaviour, prompt, config)
        if sleep:
            delay = self.latency_s + (self.slow_s if behaviour == "slow" else 0.0)
            time.sleep(max(0.0, recorded.at + delay - time.monotonic()))
        if behaviour == "held":
            self._release.wait(timeout=self.held_timeout_s)
        with self._lock:
            self.answered.append(recorded)
        return answer

    # -- the Batch API (inline requests) ---------------------------------------------------

    def create_batch(
        self, model: str, body: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        if model not in self.models:
            return 404, _error(404, "NOT_FOUND", f"models/{model} is not found")
        batch = body.get("batch", {})
        inlined = batch.get("inputConfig", {}).get("requests", {}).get("requests")
        if not isinstance(inlined, list) or not inlined:
            return 400, _error(400, "INVALID_ARGUMENT", "batch.inputConfig.requests is empty")
        responses = []
        for item in inlined:  # answered now, released when the batch "finishes"
            status, payload = self.answer(model, item.get("request", {}), headers, sleep=False)
            entry: dict[str, Any] = {"metadata": item.get("metadata", {})}
            if status == 200:
                entry["response"] = payload
            else:
                entry["error"] = {"code": status, "message": payload["error"]["message"]}
            responses.append(entry)
        with self._lock:
            name = f"batches/b{len(self.batches) + 1}-{self._rng.randrange(16**6):06x}"
            self.batches[name] = {
                "model": model,
                "display_name": batch.get("displayName", ""),
                "created": self.clock(),
                "responses": responses,
                "state": "BATCH_STATE_PENDING",
                "polls": 0,
            }
        return 200, self._batch_view(name)

    def batch(self, batch_id: str, *, cancel: bool = False) -> tuple[int, dict[str, Any]]:
        name = f"batches/{batch_id}"
        with self._lock:
            batch = self.batches.get(name)
            if batch is None:
                return 404, _error(404, "NOT_FOUND", f"{name} is not found")
            batch["polls"] += 1
            if cancel and batch["state"] in {"BATCH_STATE_PENDING", "BATCH_STATE_RUNNING"}:
                batch["state"] = "BATCH_STATE_CANCELLED"
        return 200, ({} if cancel else self._batch_view(name))

    def _batch_view(self, name: str) -> dict[str, Any]:
        with self._lock:
            batch = self.batches[name]
            if batch["state"] in {"BATCH_STATE_PENDING", "BATCH_STATE_RUNNING"}:
                age = self.clock() - batch["created"]
                if age >= self.batch_delay_s and batch["polls"] > 0:
                    batch["state"] = "BATCH_STATE_SUCCEEDED"
                elif batch["polls"] > 0:
                    batch["state"] = "BATCH_STATE_RUNNING"
            metadata: dict[str, Any] = {
                "@type": _BATCH_TYPE,
                "name": name,
                "displayName": batch["display_name"],
                "model": f"models/{batch['model']}",
                "state": batch["state"],
            }
            done = batch["state"] == "BATCH_STATE_SUCCEEDED"
            if done:
                metadata["output"] = {"inlinedResponses": {"inlinedResponses": batch["responses"]}}
        return {"name": name, "metadata": metadata, "done": done}


def refuse(model: str, config: dict[str, Any], parts: list[dict[str, Any]]) -> str | None:
    """What the API answers 400 INVALID_ARGUMENT for, per the model table: an ``imageConfig``
    the model does not take, or more image parts than it accepts. None: the request is fine."""
    from sketchgen.image_models import resolve_model
    from sketchgen.schemas import ASPECT_RATIOS

    info = resolve_model(model)
    image_config = config.get("imageConfig") or {}
    size, ratio = image_config.get("imageSize"), image_config.get("aspectRatio")
    if size is not None and not info.supports_image_size:
        return f"imageConfig.imageSize is not supported by models/{model}"
    if size is not None and size not in info.image_sizes:
        return f"imageConfig.imageSize {size!r} is not one of {', '.join(info.image_sizes)}"
    if ratio is not None and ratio not in ASPECT_RATIOS:
        return f"imageConfig.aspectRatio {ratio!r} is not one of {', '.join(ASPECT_RATIOS)}"
    images = sum(1 for p in parts if "inlineData" in p)
    if images > info.max_reference_images + 1:  # the references, plus a sketch to refine
        return f"models/{model} accepts at most {info.max_reference_images + 1} images"
    return None


def describe(
    server: FakeGeminiServer, model: str, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    """``generateContent`` on a text model: one sentence about the image parts sent (their
    size and how dark they are, from the pixels), recorded in ``server.embedded`` as
    ``(model, "DESCRIBE", None, prompt)``."""
    parts = [p for c in body.get("contents", []) for p in c.get("parts", [])]
    images = [p["inlineData"] for p in parts if "inlineData" in p]
    prompt = " ".join(p["text"] for p in parts if "text" in p)
    with server._lock:
        server.embedded.append((model, "DESCRIBE", None, prompt))
    if not images:
        return 400, _error(400, "INVALID_ARGUMENT", "no image to describe")
    picture = Image.open(io.BytesIO(base64.b64decode(images[0]["data"]))).convert("L")
    ink = float(np.mean(np.asarray(picture) < 128))
    text = (
        f"A rough black-and-white line sketch, {picture.width}x{picture.height} pixels, "
        f"{'dense' if ink > 0.2 else 'sparse'} ink."
    )
    return 200, {
        "candidates": [
            {"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}
        ],
        "modelVersion": model,
        "usageMetadata": {"promptTokenCount": 258, "candidatesTokenCount": len(text) // 4},
    }


def embed(server: FakeGeminiServer, model: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """``:batchEmbedContents`` (what google-genai's ``embed_content`` calls on the Gemini
    API) and ``:embedContent``: one vector per request, deterministic from the text (the
    offline hashing embedding, so nearer texts get nearer vectors), unit length as the real
    model's truncated vectors are after normalising. Unknown models are refused as the API
    does (404)."""
    from sketchgen.references.embedding import HashingTextEmbedding

    if model not in server.embedding_models:
        return 404, _error(404, "NOT_FOUND", f"models/{model} is not found for API version v1beta")
    requests = body.get("requests") if "requests" in body else [body]
    if not isinstance(requests, list) or not requests:
        return 400, _error(400, "INVALID_ARGUMENT", "requests must be a non-empty list")
    if len(requests) > 100:
        return 400, _error(400, "INVALID_ARGUMENT", "at most 100 requests in one batch")
    embeddings = []
    for request in requests:
        parts = (request.get("content") or {}).get("parts") or []
        text = " ".join(str(p.get("text", "")) for p in parts)
        dims = request.get("outputDimensionality")
        task = request.get("taskType")
        if dims is not None and not 1 <= int(dims) <= _EMBEDDING_DEFAULT_DIMENSIONS:
            return 400, _error(400, "INVALID_ARGUMENT", "outputDimensionality is out of range")
        size = int(dims or _EMBEDDING_DEFAULT_DIMENSIONS)
        vector = np.asarray(HashingTextEmbedding(size).embed([text])[0])
        norm = float(np.linalg.norm(vector))
        values = (vector / norm if norm else vector).round(6).tolist()
        with server._lock:
            server.embedded.append((model, task, dims, text))
        embeddings.append({"values": values})
    if "requests" in body:
        return 200, {"embeddings": embeddings}
    return 200, {"embedding": embeddings[0]}


def _error(
    code: int, status: str, message: str, details: list[Any] | None = None
) -> dict[str, Any]:
    return {"error": {"code": code, "status": status, "message": message, "details": details or []}}


def _respond(
    server: FakeGeminiServer, model: str, behaviour: str, prompt: str, config: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    if behaviour == "not_found":
        return 404, _error(404, "NOT_FOUND", f"models/{model} is not found for API version v1beta")
    if behaviour == "rate_limit":
        retry = {
            "@type": "type.googleapis.com/google.rpc.RetryInfo",
            "retryDelay": f"{server.retry_delay_s}s",
        }
        return 429, _error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted", [retry])
    if behaviour == "unavailable":
        return 503, _error(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")
    if behaviour == "internal":
        return 500, _error(500, "INTERNAL", "An internal error has occurred.")
    if behaviour == "bad_request":
        return 400, _error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.")
    usage = {"promptTokenCount": len(prompt) // 4, "candidatesTokenCount": 1290}
    if behaviour == "prompt_blocked":
        return 200, {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "modelVersion": model}
    if behaviour in NO_IMAGE_REASONS:
        return 200, {
            "candidates": [{"content": {"role": "model", "parts": []}, "finishReason": behaviour}],
            "modelVersion": model,
            "usageMetadata": usage,
        }
    if behaviour == "text_only":
        text = "I can't draw that, but here is a description of a golf mascot instead."
        return 200, {
            "candidates": [
                {"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}
            ],
            "modelVersion": model,
            "usageMetadata": usage,
        }
    image_config = config.get("imageConfig", {})
    if behaviour == "scripted_image":
        png = server._next_image()
    else:
        png = offspec_png(
            prompt,
            image_config.get("aspectRatio", "1:1"),
            image_config.get("imageSize", "1K"),
            int(config.get("seed", 0)),
        )
    inline = {"mimeType": "image/png", "data": base64.b64encode(png).decode()}
    return 200, {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"inlineData": inline}]},
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "modelVersion": model,
        "usageMetadata": usage,
    }


def _handler_for(server: FakeGeminiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, payload: dict[str, Any], stream: bool = False) -> None:
            data = json.dumps(payload).encode()
            if stream:  # streamGenerateContent?alt=sse: one event with the whole answer
                data = b"data: " + data + b"\r\n\r\n"
            self.send_response(status)
            self.send_header("Content-Type", "text/event-stream" if stream else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            # The client may have given up (its timeout): nothing left to do then.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(data)

        def _authorised(self) -> bool:
            if self.headers.get("x-goog-api-key") or "key=" in self.path:
                return True
            self._send(401, _error(401, "UNAUTHENTICATED", "API key missing"))
            return False

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            batch = _BATCH_PATH.match(path)
            if batch and not batch.group(3):
                if self._authorised():
                    self._send(*server.batch(batch.group(2)))
                return
            self._send(200, {"models": [{"name": f"models/{m}"} for m in server.models]})

        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0]
            match = _PATH.match(path)
            batch = _BATCH_PATH.match(path)
            length = int(self.headers.get("Content-Length", 0))
            raw = self.rfile.read(length) if length else b"{}"
            if not match and not (batch and batch.group(3)):
                self._send(404, _error(404, "NOT_FOUND", f"no route {self.path}"))
                return
            if not self._authorised():
                return
            if batch:
                self._send(*server.batch(batch.group(2), cancel=True))
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() != "x-goog-api-key"}
            assert match is not None  # every other path was answered above
            model, method = match.group(2), match.group(3)
            if method == "generateContent" and model in server.text_models:
                self._send(*describe(server, model, json.loads(raw)))
                return
            if method in ("embedContent", "batchEmbedContents"):
                self._send(*embed(server, model, json.loads(raw)))
                return
            if method == "batchGenerateContent":
                self._send(*server.create_batch(model, json.loads(raw), headers))
                return
            status, payload = server.answer(model, json.loads(raw), headers)
            self._send(status, payload, stream=method == "streamGenerateContent")

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A local Gemini-protocol server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    parser.add_argument(
        "--fail",
        action="append",
        default=[],
        metavar="TEXT=BEHAVIOUR",
        help="answer prompts containing TEXT with BEHAVIOUR (repeatable)",
    )
    parser.add_argument("--p-unavailable", type=float, default=0.0)
    parser.add_argument("--p-no-image", type=float, default=0.0)
    parser.add_argument("--rpm-limit", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0, help="of the random fault shares")
    parser.add_argument(
        "--record", type=Path, default=None, help="append each request's behaviour here (JSONL)"
    )
    args = parser.parse_args(argv)
    server = FakeGeminiServer(
        latency_s=args.latency,
        host=args.host,
        port=args.port,
        p_unavailable=args.p_unavailable,
        p_no_image=args.p_no_image,
        rpm_limit=args.rpm_limit,
        seed=args.seed,
        record_to=args.record,
    )
    for rule in args.fail:
        text, _, behaviour = rule.partition("=")
        server.when(text, behaviour)
    server.start()
    print(f"fake Gemini on {server.url} (latency {args.latency}s)", flush=True)
    threading.Event().wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
