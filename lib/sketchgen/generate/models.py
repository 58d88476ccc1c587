"""Former home of the model table, kept as an alias: it lives in :mod:`sketchgen.image_models`
so that :mod:`sketchgen.pricing` reads it without reaching into the pipeline (ADR 0045)."""

from __future__ import annotations

from sketchgen.image_models import (
    ALIASES,
    DEFAULT_MODEL,
    OFFLINE_MODEL_ID,
    ModelInfo,
    adapter_for,
    check_model,
    known_models,
    resolve_model,
)

__all__ = [
    "ALIASES",
    "DEFAULT_MODEL",
    "OFFLINE_MODEL_ID",
    "ModelInfo",
    "adapter_for",
    "check_model",
    "known_models",
    "resolve_model",
]
