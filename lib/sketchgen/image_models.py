"""What each Gemini image model supports, so requests ask only for what the model can do.

The one table of models, beside the one table of prices (:mod:`sketchgen.pricing`) and
below everything that reads either: the pipeline, the settings, the adapters (ADR 0045).
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

from sketchgen.errors import ConfigError

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

# Without GEMINI_MODEL (the settings') or an explicit model_name, jobs ask for this one.
DEFAULT_MODEL = "gemini-2.5-flash-image"
# What the offline sketch model reports as the model that drew (it stands in for any model).
OFFLINE_MODEL_ID = "offline-sketch-v1"


class ModelInfo(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str
    image_sizes: tuple[str, ...]
    max_reference_images: int
    supports_image_size: bool
    known: bool = True


_FLASH_25 = ModelInfo(
    id="gemini-2.5-flash-image",
    image_sizes=("1K",),
    max_reference_images=3,
    supports_image_size=False,
)
_FLASH_31 = ModelInfo(
    id="gemini-3.1-flash-image-preview",
    image_sizes=("1K", "2K", "4K"),
    max_reference_images=10,
    supports_image_size=True,
)
_PRO_3 = ModelInfo(
    id="gemini-3-pro-image-preview",
    image_sizes=("1K", "2K", "4K"),
    max_reference_images=14,
    supports_image_size=True,
)
_TABLE = {m.id: m for m in (_FLASH_25, _FLASH_31, _PRO_3)}

# `flash` is the GA model: cheapest, and 1K is what rough sketches need. `pro` is the model
# that renders 2K/4K natively and takes the most references.
ALIASES = {
    "flash": _FLASH_25.id,
    "pro": _PRO_3.id,
    "nano-banana": _FLASH_25.id,
    "nano-banana-pro": _PRO_3.id,
}
# Successors inherit their family's abilities until the table learns them.
_FAMILIES = (
    (re.compile(r"^gemini-\d+(\.\d+)?-pro-image"), _PRO_3),
    (re.compile(r"^gemini-(3|[4-9]|\d{2,})(\.\d+)?-flash-image"), _FLASH_31),
)


def known_models() -> list[str]:
    return list(_TABLE)


def adapter_for(model_used: str) -> str:
    """The adapter that answers as ``model_used``: the offline stand-in, or Gemini."""
    return "offline" if model_used == OFFLINE_MODEL_ID else "nano-banana"


def resolve_model(name: str) -> ModelInfo:
    """The model's abilities; unknown names pass through with safe defaults (1K, 3 refs)."""
    model_id = ALIASES.get(name.strip().lower(), name.strip())
    if model_id in _TABLE:
        return _TABLE[model_id]
    for pattern, family in _FAMILIES:
        if pattern.match(model_id):
            return family.model_copy(update={"id": model_id, "known": False})
    return ModelInfo(
        id=model_id,
        image_sizes=("1K",),
        max_reference_images=3,
        supports_image_size=False,
        known=False,
    )


def check_model(name: str) -> ModelInfo:
    """The model's abilities, or :class:`ConfigError` listing the known names and aliases.

    Known are the table's models, their aliases and successors of their families (a
    ``gemini-4-flash-image`` is a flash image model); anything else is a typo or a model
    that draws no images, refused before a job starts rather than failing every sketch.
    """
    info = resolve_model(name)
    if info.known or any(pattern.match(info.id) for pattern, _ in _FAMILIES):
        return info
    names = ", ".join(known_models())
    aliases = ", ".join(f"{alias} = {model}" for alias, model in ALIASES.items())
    raise ConfigError(
        f"unknown model {name.strip()!r}; known models: {names}; aliases: {aliases}",
        field="model",
    )
