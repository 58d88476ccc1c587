import pytest

from sketchgen.errors import ConfigError
from sketchgen.generate import GenerationConfig
from sketchgen.schemas import ASPECT_RATIOS


def test_defaults() -> None:
    config = GenerationConfig()
    assert (config.num_images, config.image_size, config.aspect_ratio) == (4, "1K", "1:1")
    assert config.model_name == "gemini-2.5-flash-image"
    assert config.resolution == (1024, 1024)
    assert str(config.output_dir) == "generated_outputs"


def test_gemini_model_env_reaches_every_config_that_names_no_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sketchgen
    from sketchgen.settings import get_settings

    monkeypatch.setenv("GEMINI_MODEL", "gemini-3-pro-image-preview")
    get_settings.cache_clear()
    try:
        # One GenerationConfig: the configured model wherever the class is imported from.
        assert sketchgen.GenerationConfig().model_name == "gemini-3-pro-image-preview"
        assert GenerationConfig().model_name == "gemini-3-pro-image-preview"
        assert GenerationConfig(model_name="flash").model_name == "flash"  # named: as named
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize(
    ("size", "ratio", "resolution"),
    [("1K", "16:9", (1024, 576)), ("2K", "9:16", (1152, 2048)), ("4K", "21:9", (4096, 1755))],
)
def test_resolution_is_derived(size: str, ratio: str, resolution: tuple[int, int]) -> None:
    assert GenerationConfig(image_size=size, aspect_ratio=ratio).resolution == resolution


@pytest.mark.parametrize(
    ("resolution", "size", "ratio"),
    [((1024, 1024), "1K", "1:1"), ((1024, 576), "1K", "16:9"), ([1152, 2048], "2K", "9:16")],
)
def test_resolution_sets_size_and_ratio(resolution: tuple[int, int], size: str, ratio: str) -> None:
    # The seed's documented usage: GenerationConfig(num_images=4, resolution=(1024, 1024)).
    config = GenerationConfig(num_images=4, resolution=resolution)
    assert (config.image_size, config.aspect_ratio) == (size, ratio)
    assert config.resolution == tuple(resolution)


def test_a_dumped_config_builds_again() -> None:
    config = GenerationConfig(image_size="2K", aspect_ratio="3:4", seed=3)
    assert GenerationConfig(**config.model_dump()) == config


@pytest.mark.parametrize("resolution", [(1000, 1000), (1024,), "1024x1024", (1024.0, 1024.0)])
def test_unknown_resolution_names_the_allowed_ones(resolution: object) -> None:
    with pytest.raises(ConfigError) as error:
        GenerationConfig(resolution=resolution)
    assert error.value.field == "resolution"
    assert "1024x1024" in str(error.value) and "4096x1755" in str(error.value)


def test_resolution_must_agree_with_size_and_ratio() -> None:
    with pytest.raises(ConfigError, match="aspect_ratio") as error:
        GenerationConfig(resolution=(1024, 1024), aspect_ratio="16:9")
    assert error.value.field == "resolution"


@pytest.mark.parametrize(
    ("kwargs", "field", "allowed"),
    [
        ({"num_images": 0}, "num_images", "1, 2, 3"),
        ({"num_images": 7}, "num_images", "6"),
        ({"num_images": "4"}, "num_images", "1, 2"),
        ({"image_size": "8K"}, "image_size", "1K, 2K, 4K"),
        ({"aspect_ratio": "7:3"}, "aspect_ratio", ", ".join(ASPECT_RATIOS)),
        ({"seed": -1}, "seed", None),
        ({"model_name": ""}, "model_name", None),
        ({"model_name": "nope"}, "model_name", None),
        ({"colour": True}, "colour", None),
    ],
)
def test_invalid_values_name_field_and_allowed_values(
    kwargs: dict[str, object], field: str, allowed: str | None
) -> None:
    with pytest.raises(ConfigError) as error:
        GenerationConfig(**kwargs)
    assert error.value.field == field
    assert field in str(error.value)
    if allowed:
        assert allowed in str(error.value)


def test_config_is_frozen() -> None:
    config = GenerationConfig()
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen error
        config.num_images = 5
