"""The library's parts from the settings, for its entry points (``import sketchgen``, the
CLI's ``generate``, ``refine`` and ``regenerate``): the defaults its classes use when not told
(:class:`SettingsDefaults`), which model a command-line job draws with
(:func:`offline_model_chosen`), and what one library job runs on (:func:`library_job`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sketchgen.bootstrap.adapters import build_generator, build_image_model, build_style_registry
from sketchgen.errors import ConfigError
from sketchgen.settings import Settings, get_settings

if TYPE_CHECKING:
    from sketchgen.generate.generator import GenerationResult, ImageGenerator
    from sketchgen.ports import BlobStore, ImageModel
    from sketchgen.styles import StyleRegistry


class SettingsDefaults:
    """The library's defaults (:class:`sketchgen.defaults.LibraryDefaults`) from the
    settings, read when asked, so a changed environment and ``get_settings.cache_clear()``
    take effect."""

    def image_model(self, *, offline: bool | None = None) -> ImageModel:
        return build_image_model(offline=offline)

    def max_attempts(self) -> int:
        return get_settings().max_attempts

    def model_name(self) -> str:
        return get_settings().gemini_model

    def styles_dir(self) -> Path | None:
        folder = get_settings().styles_dir
        return Path(folder) if folder else None

    def folder_store(self, root: Path) -> BlobStore:
        from sketchgen.adapters.local.blob_store import LocalBlobStore

        return LocalBlobStore(root)


def offline_model_chosen(settings: Settings, requested: str | None, offline: bool) -> bool:
    """Whether the offline sketch model draws a command-line job: asked for (``--offline``),
    or no Gemini key and no Gemini model asked for. A model asked for by name (``--model``,
    ``GEMINI_MODEL``) must be known, and with no key is refused naming ``GEMINI_API_KEY``: a
    user who asked for Gemini never gets offline sketches silently."""
    from sketchgen.generate.models import check_model

    if requested is not None:
        try:
            check_model(requested)
        except ConfigError as error:
            raise ConfigError(error.message, field="--model") from None
    if offline:
        return True
    if settings.gemini_api_key is not None and not settings.offline:
        return False
    named = requested or ("gemini_model" in settings.model_fields_set and settings.gemini_model)
    if named and not settings.offline:
        raise ConfigError(
            f"{named} is a Gemini model and needs GEMINI_API_KEY (or GOOGLE_API_KEY); "
            "--offline draws with the offline sketch model instead",
            field="GEMINI_API_KEY",
        )
    return True


@dataclass(frozen=True)
class LibraryJob:
    """What a library job runs on: the generator (made first: it prepares the model's SDK
    in a thread while the job is planned), the styles, and the model and folder a job gets
    when it names none."""

    generator: ImageGenerator
    styles: StyleRegistry
    model_name: str
    output_dir: Path


def library_output_dir(settings: Settings) -> Path:
    """Where library jobs are written when no folder is named (``SKETCHGEN_OUTPUT_DIR``)."""
    return Path(settings.output_dir)


def library_job(settings: Settings | None = None, *, offline: bool | None = None) -> LibraryJob:
    """The generator on the configured model (the offline one with ``offline``) and retry
    policy, the configured styles, ``GEMINI_MODEL`` and ``SKETCHGEN_OUTPUT_DIR``."""
    settings = settings or get_settings()
    generator = build_generator(settings, offline=offline)
    return LibraryJob(
        generator=generator,
        styles=build_style_registry(settings),
        model_name=settings.gemini_model,
        output_dir=library_output_dir(settings),
    )


def make_sketches(
    brief: str,
    *,
    style: str,
    n: int,
    offline: bool | None,
    top_k: int | None,
    **options: Any,
) -> GenerationResult:
    """:func:`sketchgen.make_sketches`, on the parts the settings describe."""
    from sketchgen.generate.config import GenerationConfig
    from sketchgen.prompt import PromptCompiler
    from sketchgen.references import TOP_K, ImageRetriever

    settings = get_settings()
    options.setdefault("model_name", settings.gemini_model)
    options.setdefault("output_dir", Path(settings.output_dir))
    config = GenerationConfig(num_images=n, **options)
    chosen = build_style_registry(settings).get_style(style)
    prompt_spec = PromptCompiler().compile(brief, chosen)
    retrieval = ImageRetriever().retrieve(
        prompt_spec, chosen, top_k=TOP_K if top_k is None else top_k
    )
    return build_generator(settings, offline=offline).generate(
        prompt_spec=prompt_spec, retrieval_result=retrieval, style=chosen, config=config
    )
