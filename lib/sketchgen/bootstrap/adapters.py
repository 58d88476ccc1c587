"""One adapter per port, chosen by the settings: where jobs, usage, styles and stars are kept
(``SKETCHGEN_JOB_STORE``: memory, a SQLite file, Firestore), which model draws, which
embedder and quota gate run. Each builder imports its adapter's client library only when it
is the one chosen, so a local run never imports the cloud's SDKs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sketchgen.errors import InputError
from sketchgen.generate.base import ImageModelAdapter
from sketchgen.settings import Settings, get_settings

if TYPE_CHECKING:
    from sketchgen.ceiling import DeploymentCeiling
    from sketchgen.generate.generator import ImageGenerator
    from sketchgen.ports import FavouriteStore, JobStore, ReferenceIndex, StyleStore, TextEmbedder
    from sketchgen.quota import QuotaGate
    from sketchgen.spend import UsageLedger
    from sketchgen.styles import StyleRegistry


def sqlite_file(url: str) -> Path | None:
    """The file of a ``sqlite:///path`` store, its folder made; None for any other URL."""
    if not url.startswith("sqlite:///"):
        return None
    path = Path(url.removeprefix("sqlite:///"))
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def topic_path(settings: Settings, topic: str) -> str:
    """A topic's full name; a short name is in ``SKETCHGEN_PROJECT``."""
    if topic.startswith("projects/"):
        return topic
    if not settings.project:
        raise InputError("a short topic name needs SKETCHGEN_PROJECT", field="SKETCHGEN_PROJECT")
    return f"projects/{settings.project}/topics/{topic}"


def build_image_model(
    settings: Settings | None = None, *, offline: bool | None = None
) -> ImageModelAdapter:
    """Nano Banana when a Gemini key is configured, else the offline sketch model."""
    settings = settings or get_settings()
    if offline if offline is not None else settings.use_offline_model:
        from sketchgen.generate.offline import OfflineSketchAdapter

        return OfflineSketchAdapter()
    from sketchgen.adapters.gemini import NanoBananaAdapter

    assert settings.gemini_api_key is not None  # use_offline_model is False only with a key
    return NanoBananaAdapter(
        api_key=settings.gemini_api_key.get_secret_value(),
        base_url=settings.gemini_base_url,
        timeout_s=settings.model_timeout_s,
    )


def build_generator(
    settings: Settings | None = None, *, offline: bool | None = None
) -> ImageGenerator:
    """The library's generator on the configured model and retry policy: what the CLI and
    ``sketchgen.make_sketches(...)`` run."""
    from sketchgen.generate.generator import ImageGenerator
    from sketchgen.generate.retry import RetryPolicy

    settings = settings or get_settings()
    return ImageGenerator(
        build_image_model(settings, offline=offline),
        retry=RetryPolicy(max_attempts=settings.max_attempts),
    )


def build_style_registry(settings: Settings | None = None) -> StyleRegistry:
    """``SKETCHGEN_STYLES_DIR`` when set, else the styles shipped with the package."""
    from sketchgen.styles import PACKAGED_STYLES_DIR, StyleRegistry

    settings = settings or get_settings()
    return StyleRegistry(settings.styles_dir or PACKAGED_STYLES_DIR)


def build_job_store(settings: Settings) -> JobStore:
    url = settings.job_store
    if url == "memory://":
        from sketchgen.adapters.local.job_store import MemoryJobStore

        return MemoryJobStore()
    if (path := sqlite_file(url)) is not None:
        from sketchgen.adapters.local.job_store import SqliteJobStore

        return SqliteJobStore(path)
    if url == "firestore":
        from sketchgen.adapters.gcp.firestore_job_store import FirestoreJobStore

        return FirestoreJobStore(project=settings.project, database=settings.firestore_database)
    raise InputError(
        f"unknown job store {url!r}",
        field="SKETCHGEN_JOB_STORE",
        allowed=("memory://", "sqlite:///path", "firestore"),
    )


def build_favourite_store(settings: Settings) -> FavouriteStore:
    """Beside the jobs: the same SQLite file (its own table), or Firestore's users/{uid}."""
    if settings.job_store == "firestore":
        from sketchgen.adapters.gcp.firestore_favourite_store import FirestoreFavouriteStore

        return FirestoreFavouriteStore(
            project=settings.project, database=settings.firestore_database
        )
    from sketchgen.adapters.local.favourite_store import (
        MemoryFavouriteStore,
        SqliteFavouriteStore,
    )

    path = sqlite_file(settings.job_store)
    return SqliteFavouriteStore(path) if path is not None else MemoryFavouriteStore()


def build_quota_gate(settings: Settings) -> QuotaGate | None:
    """The model's quota, shared where the jobs are: Firestore across instances, else memory."""
    if settings.model_rpm is None:
        return None
    from sketchgen.quota import QuotaPolicy

    policy = QuotaPolicy(rpm=settings.model_rpm, horizon_s=settings.quota_horizon_s)
    if settings.job_store == "firestore":
        from sketchgen.adapters.gcp.firestore_quota_gate import FirestoreQuotaGate

        return FirestoreQuotaGate(
            policy, project=settings.project, database=settings.firestore_database
        )
    from sketchgen.adapters.local.quota_gate import MemoryQuotaGate

    return MemoryQuotaGate(policy)


def build_usage_ledger(settings: Settings) -> UsageLedger:
    """Per-user usage and accounts where the jobs are: Firestore, the SQLite file, memory."""
    if settings.job_store == "firestore":
        from sketchgen.adapters.gcp.firestore_usage_ledger import FirestoreUsageLedger

        return FirestoreUsageLedger(project=settings.project, database=settings.firestore_database)
    from sketchgen.adapters.local.usage_ledger import MemoryUsageLedger, SqliteUsageLedger

    path = sqlite_file(settings.job_store)
    return SqliteUsageLedger(path) if path is not None else MemoryUsageLedger()


def build_deployment_ceiling(settings: Settings) -> DeploymentCeiling | None:
    """The deployment's daily USD (docs/decisions/0021), where the jobs are: Firestore shard
    documents, the SQLite file, memory. None when no ceiling is set."""
    ceiling = settings.deployment_daily_usd
    if ceiling is None:
        return None
    if settings.job_store == "firestore":
        from sketchgen.adapters.gcp.firestore_deployment_ceiling import (
            FirestoreDeploymentCeiling,
        )

        return FirestoreDeploymentCeiling(
            ceiling, project=settings.project, database=settings.firestore_database
        )
    from sketchgen.adapters.local.deployment_ceiling import (
        MemoryDeploymentCeiling,
        SqliteDeploymentCeiling,
    )

    path = sqlite_file(settings.job_store)
    if path is not None:
        return SqliteDeploymentCeiling(path, ceiling)
    return MemoryDeploymentCeiling(ceiling)


def build_style_store(settings: Settings) -> tuple[StyleStore, ReferenceIndex]:
    """User styles live where the jobs do: memory, a SQLite file beside the job store's, or
    Firestore (whose vector search is then the index; numpy otherwise)."""
    if settings.job_store == "firestore":
        from sketchgen.adapters.gcp.firestore_style_store import (
            FirestoreReferenceIndex,
            FirestoreStyleStore,
        )

        project, database = settings.project, settings.firestore_database
        return (
            FirestoreStyleStore(project=project, database=database),
            FirestoreReferenceIndex(project=project, database=database),
        )
    from sketchgen.adapters.local.numpy_index import NumpyReferenceIndex
    from sketchgen.adapters.local.style_store import MemoryStyleStore, SqliteStyleStore

    path = sqlite_file(settings.job_store)
    store: StyleStore = (
        SqliteStyleStore(path.with_name(path.stem + ".styles.sqlite3"))
        if path is not None
        else MemoryStyleStore()
    )
    return store, NumpyReferenceIndex(store)


def build_embedder(settings: Settings) -> TextEmbedder:
    """Gemini embeddings when a key is configured (and not ``offline``), else the hashing
    embedding; both at :data:`~sketchgen.references.EMBEDDING_DIMENSIONS` (the size the
    Firestore vector index is declared with)."""
    from sketchgen.references import EMBEDDING_DIMENSIONS, HashingTextEmbedding

    if settings.use_offline_model:
        return HashingTextEmbedding(EMBEDDING_DIMENSIONS)
    from sketchgen.adapters.gemini import GeminiTextEmbedder

    assert settings.gemini_api_key is not None
    return GeminiTextEmbedder(
        settings.gemini_api_key.get_secret_value(),
        model=settings.embedding_model,
        dimensions=EMBEDDING_DIMENSIONS,
        base_url=settings.gemini_base_url,
    )
