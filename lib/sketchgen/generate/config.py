"""``GenerationConfig``: how many sketches, how big, on which model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, computed_field, field_validator

from sketchgen.errors import ConfigError
from sketchgen.schemas import ASPECT_RATIOS, IMAGE_SIZES, pixel_size

__all__ = ["MAX_IMAGES", "GenerationConfig"]

MAX_IMAGES = 8
_ALLOWED: dict[str, tuple[object, ...]] = {
    "num_images": tuple(range(1, MAX_IMAGES + 1)),
    "image_size": tuple(IMAGE_SIZES),
    "aspect_ratio": ASPECT_RATIOS,
}


def _default_model() -> str:
    from sketchgen.settings import get_settings

    return get_settings().gemini_model


class GenerationConfig(BaseModel):
    """Validated on construction; anything invalid raises :class:`ConfigError` naming the field."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    num_images: int = Field(default=4, ge=1, le=MAX_IMAGES, strict=True)
    image_size: str = "1K"
    aspect_ratio: str = "1:1"
    model_name: str = Field(default_factory=_default_model, min_length=1, max_length=100)
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)
    allow_text: bool = False
    output_dir: Path = Path("generated_outputs")

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as error:
            first = error.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or "config"
            allowed = _ALLOWED.get(field)
            raise ConfigError(
                f"invalid {field}: {first['msg']}", field=field, allowed=allowed
            ) from None

    @field_validator("image_size")
    @classmethod
    def _check_size(cls, value: str) -> str:
        if value not in IMAGE_SIZES:
            raise ValueError(f"{value!r} is not an image size")
        return value

    @field_validator("aspect_ratio")
    @classmethod
    def _check_ratio(cls, value: str) -> str:
        if value not in ASPECT_RATIOS:
            raise ValueError(f"{value!r} is not a supported aspect ratio")
        return value

    @computed_field  # type: ignore[prop-decorator]
    @property
    def resolution(self) -> str:
        """``WIDTHxHEIGHT`` in pixels, derived from size and ratio (kept for older callers)."""
        width, height = pixel_size(self.image_size, self.aspect_ratio)
        return f"{width}x{height}"
