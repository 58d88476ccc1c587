"""The front door: ``sketchgen.make_sketches("playful golf mascot", n=4)`` runs a whole job,
and :class:`ConfiguredDefaults`, what the library's classes use when they are not told.

Like the CLI this is an entry point, not library: it takes the model (Nano Banana when
``GEMINI_API_KEY`` is set, else the offline sketch model), ``GEMINI_MODEL``, the styles
folder and the output folder from the settings, through :mod:`sketchgen.bootstrap`, and runs
exactly the library calls the CLI runs.

``import sketchgen`` imports this module and installs :class:`ConfiguredDefaults` (see
:mod:`sketchgen.defaults`); everything else loads on first call.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sketchgen.generate.generator import GenerationResult
    from sketchgen.ports import BlobStore, ImageModel

__all__ = ["DEFAULT_STYLE", "ConfiguredDefaults", "make_sketches"]

DEFAULT_STYLE = "loose-ink-mascot"  # the CLI's too


class ConfiguredDefaults:
    """The library's defaults from the settings (read when asked, so a changed environment
    and ``get_settings.cache_clear()`` take effect)."""

    def image_model(self, *, offline: bool | None = None) -> ImageModel:
        from sketchgen.bootstrap import build_image_model

        return build_image_model(offline=offline)

    def max_attempts(self) -> int:
        from sketchgen.settings import get_settings

        return get_settings().max_attempts

    def model_name(self) -> str:
        from sketchgen.settings import get_settings

        return get_settings().gemini_model

    def styles_dir(self) -> Path | None:
        from sketchgen.settings import get_settings

        folder = get_settings().styles_dir
        return Path(folder) if folder else None

    def folder_store(self, root: Path) -> BlobStore:
        from sketchgen.adapters.local.blob_store import LocalBlobStore

        return LocalBlobStore(root)


def make_sketches(
    brief: str,
    *,
    style: str = DEFAULT_STYLE,
    n: int = 4,
    offline: bool | None = None,
    top_k: int | None = None,
    **options: Any,
) -> GenerationResult:
    """Make ``n`` sketches of ``brief`` in ``style``; returns when every sketch has ended.

    ``options`` are :class:`~sketchgen.generate.GenerationConfig` fields (``resolution``,
    ``image_size``, ``aspect_ratio``, ``seed``, ``allow_text``, ``model_name``,
    ``output_dir``). ``offline=True`` uses the offline model even with a key. Bad input
    raises the same :class:`~sketchgen.errors.InputError` the CLI and the HTTP API report.
    """
    from sketchgen.bootstrap import build_generator, build_style_registry
    from sketchgen.generate.config import GenerationConfig
    from sketchgen.prompt import PromptCompiler
    from sketchgen.references import TOP_K, ImageRetriever
    from sketchgen.settings import get_settings

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
