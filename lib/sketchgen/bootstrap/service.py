"""The service from the settings: its ports built by the adapters' builders, then wired by
:func:`~sketchgen.bootstrap.wiring.assemble` (:func:`build_service`); the spend control and
the style catalog the settings describe. The only place the services meet their adapters."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from sketchgen.bootstrap.adapters import (
    build_deployment_ceiling,
    build_embedder,
    build_favourite_store,
    build_image_model,
    build_job_store,
    build_quota_gate,
    build_style_registry,
    build_style_store,
    build_usage_ledger,
    topic_path,
)
from sketchgen.bootstrap.wiring import assemble
from sketchgen.settings import Settings, get_settings

if TYPE_CHECKING:
    from sketchgen.ceiling import DeploymentCeiling
    from sketchgen.ports import (
        BlobStore,
        FavouriteStore,
        ImageModel,
        JobStore,
        ReferenceIndex,
        StyleStore,
        TaskQueue,
        TextEmbedder,
    )
    from sketchgen.quota import QuotaGate
    from sketchgen.services import SketchService
    from sketchgen.services.spending import SpendControl
    from sketchgen.services.styles import StyleService
    from sketchgen.spend import UsageLedger
    from sketchgen.styles import StyleRegistry


def build_spend_control(
    settings: Settings,
    ledger: UsageLedger | None = None,
    *,
    ceiling: DeploymentCeiling | None = None,
) -> SpendControl:
    """Per-user plans and limits (docs/decisions/0012) over the configured ledger, under the
    deployment's ceiling (docs/decisions/0021)."""
    from sketchgen.services.spending import SpendControl, SpendLimits

    limits = SpendLimits(
        daily_images=settings.user_daily_images, active_jobs=settings.user_active_jobs
    )
    return SpendControl(
        ledger or build_usage_ledger(settings),
        limits,
        ceiling=ceiling or build_deployment_ceiling(settings),
    )


def build_style_catalog(
    settings: Settings,
    *,
    styles: StyleRegistry,
    blobs: BlobStore,
    store: StyleStore | None = None,
    index: ReferenceIndex | None = None,
    embedder: TextEmbedder | None = None,
    spend: SpendControl | None = None,
) -> StyleService:
    from sketchgen.adapters.local.numpy_index import NumpyReferenceIndex
    from sketchgen.services.styles import StyleLimits, StyleService

    if store is None:
        store, built_index = build_style_store(settings)
        index = index or built_index
    describer = None
    if settings.describe_references and not settings.use_offline_model:
        from sketchgen.adapters.gemini import GeminiImageDescriber

        assert settings.gemini_api_key is not None
        describer = GeminiImageDescriber(
            settings.gemini_api_key.get_secret_value(),
            model=settings.describe_model,
            base_url=settings.gemini_base_url,
        )
    return StyleService(
        builtins=styles,
        store=store,
        index=index or NumpyReferenceIndex(store),
        embedder=embedder or build_embedder(settings),
        blobs=blobs,
        describer=describer,
        spend=spend,
        limits=StyleLimits(
            max_styles_per_user=settings.max_styles_per_user,
            max_references_per_style=settings.max_references_per_style,
            max_reference_uploads_per_day=settings.max_reference_uploads_per_day,
            max_upload_bytes=settings.max_reference_bytes,
            max_upload_pixels=settings.max_reference_pixels,
        ),
    )


def build_service(
    settings: Settings | None = None,
    *,
    jobs: JobStore | None = None,
    blobs: BlobStore | None = None,
    queue: TaskQueue | None = None,
    model: ImageModel | None = None,
    styles: StyleRegistry | None = None,
    gate: QuotaGate | None = None,
    ledger: UsageLedger | None = None,
    style_store: StyleStore | None = None,
    embedder: TextEmbedder | None = None,
    ceiling: DeploymentCeiling | None = None,
    favourites: FavouriteStore | None = None,
) -> SketchService:
    """The service's capabilities from ``settings``; any part handed in is used instead of
    building one (tests, the CLI, a caller with its own store), as cosmicpython's ``bootstrap``
    does."""
    from sketchgen.adapters.blob_url import blob_store_from_url
    from sketchgen.adapters.local.favourite_store import MemoryFavouriteStore
    from sketchgen.adapters.local.usage_ledger import MemoryUsageLedger
    from sketchgen.adapters.traced import traced
    from sketchgen.services import ServiceConfig

    settings = settings or get_settings()
    # A job store handed in (tests, the CLI) gets a ledger of its own in memory: the
    # configured one would count those jobs in the configured store.
    if ledger is None and jobs is not None:
        ledger = MemoryUsageLedger()
        if ceiling is None and settings.deployment_daily_usd is not None:
            from sketchgen.adapters.local.deployment_ceiling import MemoryDeploymentCeiling

            ceiling = MemoryDeploymentCeiling(settings.deployment_daily_usd)
    inline = None
    if queue is None and settings.sketch_topic:
        from sketchgen.adapters.gcp.pubsub_task_queue import PubSubTaskQueue

        queue = PubSubTaskQueue(topic_path(settings, settings.sketch_topic))
    elif queue is None:
        from sketchgen.adapters.local.task_queue import InlineTaskQueue
        from sketchgen.timing import queue_delivery_attempts

        # As the subscription: the worker counts its own draws (max_deliveries); the queue
        # lets refusals (no model slot in time) come back more often than that.
        queue = inline = InlineTaskQueue(
            max_deliveries=queue_delivery_attempts(settings.max_deliveries)
        )
    # Every capability reaches the model, the bucket and the quota gate through spans and
    # metrics (sketchgen.adapters.traced; no-ops until telemetry is installed).
    traced_model, blobs, traced_gate = traced(
        model=model or build_image_model(settings),
        blobs=blobs
        or blob_store_from_url(settings.blob_url, s3_endpoint_url=settings.s3_endpoint_url),
        gate=gate or build_quota_gate(settings),
    )
    styles = styles or build_style_registry(settings)
    spend = (
        build_spend_control(settings, ledger, ceiling=ceiling) if settings.spend_control else None
    )
    built = assemble(
        jobs=jobs or build_job_store(settings),
        blobs=blobs,
        queue=queue,
        model=traced_model,
        styles=styles,
        catalog=build_style_catalog(
            settings,
            styles=styles,
            blobs=blobs,
            store=style_store,
            embedder=embedder,
            spend=spend,
        ),
        config=ServiceConfig(
            lease_s=settings.lease_s,
            lease_wait_s=settings.lease_wait_s,
            max_deliveries=settings.max_deliveries,
            retention=timedelta(days=settings.job_retention_days),
            quota_wait_s=settings.quota_wait_s,
            model_timeout_s=settings.model_timeout_s,
            worker_overhead_s=settings.worker_overhead_s,
            default_model=settings.gemini_model,
        ),
        gate=traced_gate,
        spend=spend,
        # A job store handed in keeps its stars in memory beside it, as its ledger does.
        favourites=favourites
        or (MemoryFavouriteStore() if jobs is not None else build_favourite_store(settings)),
    )
    if inline is not None:
        # The in-process queue delivers straight to this process's worker.
        inline.bind(built.worker.run_sketch)
    return built
