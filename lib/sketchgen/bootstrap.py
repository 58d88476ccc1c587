"""The composition root: the one place that reads settings and builds adapters."""

from __future__ import annotations

from sketchgen.generate.base import ImageModelAdapter
from sketchgen.settings import Settings, get_settings

__all__ = ["build_image_model"]


def build_image_model(settings: Settings | None = None, *, offline: bool | None = None) -> ImageModelAdapter:
    """Nano Banana when a Gemini key is configured, else the offline sketch model."""
    settings = settings or get_settings()
    if offline if offline is not None else settings.use_offline_model:
        from sketchgen.generate.offline import OfflineSketchAdapter

        return OfflineSketchAdapter()
    from sketchgen.generate.nano_banana import NanoBananaAdapter

    assert settings.gemini_api_key is not None  # use_offline_model is False only with a key
    return NanoBananaAdapter(
        api_key=settings.gemini_api_key.get_secret_value(),
        base_url=settings.gemini_base_url,
        timeout_s=settings.model_timeout_s,
    )
