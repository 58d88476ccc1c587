"""``GenerationConfig``: how many sketches, how big, on which model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    computed_field,
    field_validator,
    model_validator,
)

from sketchgen.defaults import current_defaults
from sketchgen.errors import ConfigError, first_problem
from sketchgen.image_models import check_model
from sketchgen.schemas import ASPECT_RATIOS, IMAGE_SIZES, pixel_size

__all__ = ["MAX_IMAGES", "RESOLUTIONS", "GenerationConfig"]

# One sketch per layout: a job of six shows every composition once, and no more are promised
# (the README's 3-6; 1 and 2 stay allowed for refinements and quick tries).
MAX_IMAGES = 6
# Every (width, height) the model can draw, and the size and ratio that make it. Pixel sizes
# are unique across the table (a different ratio or long side always changes them), so a
# resolution names exactly one (image_size, aspect_ratio).
RESOLUTIONS: dict[tuple[int, int], tuple[str, str]] = {
    pixel_size(size, ratio): (size, ratio) for size in IMAGE_SIZES for ratio in ASPECT_RATIOS
}
_ALLOWED: dict[str, tuple[object, ...]] = {
    "num_images": tuple(range(1, MAX_IMAGES + 1)),
    "image_size": tuple(IMAGE_SIZES),
    "aspect_ratio": ASPECT_RATIOS,
    "resolution": tuple(f"{w}x{h}" for w, h in RESOLUTIONS),
}


def _as_resolution(value: object) -> tuple[int, int]:
    """``(w, h)`` or ``[w, h]`` (as metadata.json stores it) to a known resolution."""
    if (
        isinstance(value, tuple | list)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        pair = (int(value[0]), int(value[1]))
        if pair in RESOLUTIONS:
            return pair
    raise ConfigError(
        f"invalid resolution: {value!r} is not a (width, height) the model draws",
        field="resolution",
        allowed=_ALLOWED["resolution"],
    )


class GenerationConfig(BaseModel):
    """Validated on construction; anything invalid raises :class:`ConfigError` naming the field.

    The size is ``image_size`` × ``aspect_ratio``, or equivalently ``resolution=(w, h)`` (one
    of :data:`RESOLUTIONS`, e.g. ``(1024, 1024)``), which sets both.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    num_images: int = Field(default=4, ge=1, le=MAX_IMAGES, strict=True)
    image_size: str = "1K"
    aspect_ratio: str = "1:1"
    # Unnamed, the configured model (GEMINI_MODEL, else the table's DEFAULT_MODEL) through
    # the library's defaults: the same wherever GenerationConfig is imported from.
    model_name: str = Field(
        default_factory=lambda: current_defaults().model_name(), min_length=1, max_length=100
    )
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)
    allow_text: bool = False
    output_dir: Path = Path("generated_outputs")

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as error:
            field, message = first_problem(error)
            field = field or "config"
            allowed = _ALLOWED.get(field)
            raise ConfigError(f"invalid {field}: {message}", field=field, allowed=allowed) from None

    @model_validator(mode="before")
    @classmethod
    def _from_resolution(cls, data: Any) -> Any:
        # ``resolution`` is an input as well as a derived value, so a dumped config
        # (``GenerationConfig(**config.model_dump())``) builds again; given beside
        # image_size/aspect_ratio it must agree with them.
        if not isinstance(data, dict) or "resolution" not in data:
            return data
        data = dict(data)
        size, ratio = RESOLUTIONS[_as_resolution(data.pop("resolution"))]
        for name, implied in (("image_size", size), ("aspect_ratio", ratio)):
            given = data.setdefault(name, implied)
            if given != implied:
                raise ConfigError(
                    f"invalid resolution: {implied} {name} implied, but {name}={given!r} given",
                    field="resolution",
                )
        return data

    @field_validator("model_name")
    @classmethod
    def _check_model(cls, value: str) -> str:
        try:
            check_model(value)
        except ConfigError as error:
            raise ValueError(str(error)) from None
        return value

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

    # mypy cannot type a decorator over a property; pydantic documents this ignore for it.
    # The ignore below: mypy rejects a decorator on a property; pydantic documents this ignore
    @computed_field  # type: ignore[prop-decorator]
    @property
    def resolution(self) -> tuple[int, int]:
        """``(width, height)`` in pixels, from size and ratio; metadata.json stores it."""
        return pixel_size(self.image_size, self.aspect_ratio)
