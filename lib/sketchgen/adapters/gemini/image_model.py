"""``NanoBananaAdapter``: Gemini image models through the google-genai SDK.

The SDK client is the package's one :class:`~sketchgen.adapters.gemini.GeminiClient` (sync
and ``aio``, built on first use, the SDK's retry off: ADR 0001); its errors are translated by
the package's one :func:`~sketchgen.adapters.gemini.translate_error`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sketchgen.adapters.gemini._client import GeminiClient
from sketchgen.adapters.gemini._errors import translate_error
from sketchgen.errors import ConfigError, ModelError, ModelRequestError, NoImageError
from sketchgen.generate.base import ImageModelAdapter
from sketchgen.image_models import ModelInfo, known_models, resolve_model
from sketchgen.ports import BatchState, BatchStatus, ImageRequest, ImageResponse

__all__ = ["NanaBananaAdapter", "NanoBananaAdapter"]


class NanoBananaAdapter(ImageModelAdapter):
    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout_s: float = 120.0,
        client: Any | None = None,
        gemini: GeminiClient | None = None,
    ) -> None:
        """``gemini`` shares one client with the other Gemini adapters; else one is made
        from ``api_key``, ``base_url`` and ``timeout_s`` (``client``: a ready SDK client)."""
        self.gemini = gemini or GeminiClient(
            api_key, base_url=base_url, timeout_s=timeout_s, client=client
        )

    def __repr__(self) -> str:  # never show the key
        return f"NanoBananaAdapter(base_url={self.gemini.base_url!r})"

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
        _prepare_answer_types()

    @property
    def client(self) -> Any:
        return self.gemini.sync

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
            response = await self.gemini.aio.models.generate_content(
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
        return translate_error(error, model, known_models=known_models(), client=self.gemini)

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


def _prepare_answer_types() -> None:
    """What the first answer would otherwise build on its clock (~40 ms of one CPU): the
    validators of the SDK's answer types, each built on its first use (pydantic), and the
    event-loop backend the async transport (httpcore2 on anyio) imports on its first
    connection."""
    import importlib
    from contextlib import suppress

    from google.genai import types

    with suppress(ImportError):  # anyio's own module for asyncio; a later anyio may move it
        importlib.import_module("anyio._backends._asyncio")
    blob = {"mime_type": "image/png", "data": b"png"}
    content = {"role": "model", "parts": [{"inline_data": blob}]}
    candidate = {"content": content, "finish_reason": "STOP"}
    usage = {"prompt_token_count": 1, "candidates_token_count": 1}
    answer = {"candidates": [candidate], "usage_metadata": usage, "model_version": "warm-up"}
    for kind, sample in (
        (types.GenerateContentResponse, answer),
        (types.Candidate, candidate),
        (types.Content, content),
        (types.Blob, blob),
        (types.GenerateContentResponseUsageMetadata, usage),
        (types.HttpResponse, {"headers": {}, "body": ""}),
    ):
        kind.model_validate(sample)
    types.UserContent(parts=[types.Part.from_text(text="warm-up")])
