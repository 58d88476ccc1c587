"""``NanoBananaAdapter``: Gemini image models through the google-genai SDK.

One ``genai.Client`` per adapter, built on first use and shared by the sync and async
(``client.aio``) paths. The SDK's own retry is off (see ADR 0001); its errors are translated
here and never leave this module.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Sequence
from typing import Any

from sketchgen.errors import (
    ConfigError,
    ModelError,
    ModelNotFoundError,
    ModelRequestError,
    NoImageError,
    TransientModelError,
)
from sketchgen.generate.base import ImageModelAdapter
from sketchgen.generate.models import ModelInfo, known_models, resolve_model
from sketchgen.ports import BatchState, BatchStatus, ImageRequest, ImageResponse

__all__ = ["NanaBananaAdapter", "NanoBananaAdapter"]

_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_GEMINI_URL = "https://generativelanguage.googleapis.com"  # the SDK's own default
_DURATION = re.compile(r"^\s*([0-9.]+)s\s*$")


def _retry_delay(details: Any) -> float | None:
    """The ``google.rpc.RetryInfo`` delay in a Google error body, in seconds."""
    error = details.get("error", details) if isinstance(details, dict) else {}
    for detail in error.get("details", []) if isinstance(error, dict) else []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("RetryInfo"):
            match = _DURATION.match(str(detail.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    return None


def _is_transport_error(error: BaseException) -> bool:
    # httpx, httpx2 and aiohttp raise their own timeout/connection types; all are transient.
    module = type(error).__module__.split(".", 1)[0]
    return isinstance(error, (TimeoutError, ConnectionError, asyncio.TimeoutError)) or module in {
        "httpx",
        "httpx2",
        "httpcore",
        "aiohttp",
    }


class NanoBananaAdapter(ImageModelAdapter):
    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout_s: float = 120.0,
        client: Any | None = None,
    ) -> None:
        self._api_key = api_key
        self._base_url = base_url
        self._timeout_s = timeout_s
        self._client_instance = client
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never show the key
        return f"NanoBananaAdapter(base_url={self._base_url!r})"

    @property
    def name(self) -> str:
        return "nano-banana"

    def prepare(self) -> None:
        self.client  # noqa: B018 - builds the client (and imports the SDK) once
        # The first request's own one-off costs, off its clock: the SDK's request types are
        # validated once (pydantic builds their validators on first use) and the idna codec
        # httpx encodes the host with is imported.
        import encodings.idna  # noqa: F401

        from sketchgen.schemas import EXAGGERATIONS, LAYOUTS, Variation

        self._arguments(
            ImageRequest(
                index=0,
                prompt="warm-up",
                brief="warm-up",
                variation=Variation(index=0, layout=LAYOUTS[0], exaggeration=EXAGGERATIONS[0]),
                model=known_models()[0],
            )
        )

    @property
    def client(self) -> Any:
        if self._client_instance is None:
            with self._lock:
                if self._client_instance is None:
                    from google import genai
                    from google.genai import types

                    self._client_instance = genai.Client(
                        api_key=self._api_key,
                        http_options=types.HttpOptions(
                            base_url=self._base_url,
                            timeout=int(self._timeout_s * 1000),  # the SDK wants milliseconds
                            retry_options=types.HttpRetryOptions(attempts=1),
                        ),
                    )
        return self._client_instance

    # -- request -------------------------------------------------------------------------

    def _arguments(self, request: ImageRequest) -> tuple[ModelInfo, list[Any], Any]:
        from google.genai import types

        info = resolve_model(request.model)
        parts: list[Any] = []
        if request.input_image is not None:
            # Refinement: the sketch to change comes first, then what to do with it.
            parts.append(types.Part.from_bytes(data=request.input_image, mime_type="image/png"))
        parts.append(types.Part.from_text(text=request.prompt))
        for ref in request.references[: info.max_reference_images]:
            parts.append(types.Part.from_bytes(data=ref.data, mime_type=ref.reference.mime_type))
        image_config = types.ImageConfig(
            aspect_ratio=request.aspect_ratio,
            image_size=request.image_size if info.supports_image_size else None,
        )
        config = types.GenerateContentConfig(
            response_modalities=["IMAGE"], image_config=image_config, seed=request.seed
        )
        return info, parts, config

    def generate_image(self, request: ImageRequest) -> ImageResponse:
        info, parts, config = self._arguments(request)
        try:
            response = self.client.models.generate_content(
                model=info.id, contents=parts, config=config
            )
        except Exception as error:
            raise self._translate(error, info.id) from None
        return self._image(response, info.id)

    async def agenerate_image(self, request: ImageRequest) -> ImageResponse:
        info, parts, config = self._arguments(request)
        try:
            response = await self.client.aio.models.generate_content(
                model=info.id, contents=parts, config=config
            )
        except Exception as error:
            raise self._translate(error, info.id) from None
        return self._image(response, info.id)

    # -- the Batch API (inline requests) ---------------------------------------------------

    supports_batch = True

    def submit_batch(self, requests: Sequence[ImageRequest], *, display_name: str) -> str:
        from google.genai import types

        models = {resolve_model(r.model).id for r in requests}
        if len(models) != 1:
            raise ConfigError("a batch runs one model", field="model", allowed=sorted(models))
        model = models.pop()
        inlined = []
        for position, request in enumerate(requests):
            _info, parts, config = self._arguments(request)
            inlined.append(
                types.InlinedRequest(
                    contents=[types.Content(role="user", parts=parts)],
                    config=config,
                    metadata={"key": str(position)},
                )
            )
        try:
            job = self.client.batches.create(
                model=model,
                src=inlined,
                config=types.CreateBatchJobConfig(display_name=display_name),
            )
        except Exception as error:
            raise self._translate(error, model) from None
        return str(job.name)

    def batch_status(self, name: str) -> BatchStatus:
        try:
            job = self.client.batches.get(name=name)
        except Exception as error:
            raise self._translate(error, name) from None
        state = _BATCH_STATES.get(getattr(job.state, "value", str(job.state)), "running")
        if state != "succeeded":
            return BatchStatus(name, state)
        model = (job.model or "").removeprefix("models/")
        answers = (job.dest.inlined_responses if job.dest else None) or []
        ordered = sorted(answers, key=lambda a: int((a.metadata or {}).get("key", 0)))
        results: list[ImageResponse | Exception] = []
        for answer in ordered:
            if answer.error is not None:
                results.append(ModelRequestError(f"batch request failed: {answer.error}"))
                continue
            try:
                results.append(self._image(answer.response, model))
            except ModelError as error:
                results.append(error)
        return BatchStatus(name, state, tuple(results))

    # -- response ------------------------------------------------------------------------

    def _translate(self, error: Exception, model: str) -> ModelError:
        from google.genai import errors

        if isinstance(error, errors.APIError):
            code = int(error.code or 0)
            message = f"{code} {error.status}: {error.message}"
            if code == 404:
                return ModelNotFoundError(model, known_models())
            if code in _TRANSIENT_STATUS:
                return TransientModelError(
                    message, status=code, retry_after=_retry_delay(error.details)
                )
            return ModelRequestError(message)
        if _is_transport_error(error):
            return TransientModelError(self._unreachable(error))
        return ModelRequestError(f"unexpected {type(error).__name__} from the Gemini SDK")

    def _unreachable(self, error: BaseException) -> str:
        """A network failure in words that say where: the host, never the key or a path."""
        from urllib.parse import urlsplit

        host = urlsplit(self._base_url or _GEMINI_URL).netloc or self._base_url
        timed_out = isinstance(error, (TimeoutError, asyncio.TimeoutError)) or "Timeout" in (
            type(error).__name__
        )
        if timed_out:
            return f"Gemini at {host} did not answer within {self._timeout_s:g} s"
        detail = str(error).strip()
        cause = f"{type(error).__name__}: {detail}" if detail else type(error).__name__
        return f"could not reach Gemini at {host} ({cause})"

    @staticmethod
    def _image(response: Any, model: str) -> ImageResponse:
        feedback = getattr(response, "prompt_feedback", None)
        block = getattr(feedback, "block_reason", None)
        candidates = response.candidates or []
        if block and not candidates:
            reason = getattr(block, "value", str(block))
            raise NoImageError(
                f"the prompt was blocked ({reason})", finish_reason=f"PROMPT_BLOCKED:{reason}"
            )
        texts: list[str] = []
        finish = None
        for candidate in candidates:
            finish = getattr(candidate.finish_reason, "value", candidate.finish_reason)
            for part in (candidate.content.parts if candidate.content else None) or []:
                if part.inline_data is not None and part.inline_data.data:
                    return ImageResponse(
                        data=part.inline_data.data,
                        mime_type=part.inline_data.mime_type or "image/png",
                        model_used=response.model_version or model,
                        finish_reason=finish,
                    )
                if part.text:
                    texts.append(part.text)
        if finish and finish != "STOP":
            raise NoImageError(f"the model returned no image ({finish})", finish_reason=finish)
        if texts:
            excerpt = " ".join(texts)[:120]
            raise NoImageError(
                f"the model answered with text only: {excerpt!r}", finish_reason="TEXT_ONLY"
            )
        raise NoImageError("the model returned no image", finish_reason=finish or "NO_IMAGE")


_BATCH_STATES: dict[str, BatchState] = {
    "JOB_STATE_PENDING": "pending",
    "JOB_STATE_QUEUED": "pending",
    "JOB_STATE_RUNNING": "running",
    "JOB_STATE_SUCCEEDED": "succeeded",
    "JOB_STATE_FAILED": "failed",
    "JOB_STATE_CANCELLED": "cancelled",
    "JOB_STATE_EXPIRED": "expired",
}

NanaBananaAdapter = NanoBananaAdapter  # the spelling in the original design
