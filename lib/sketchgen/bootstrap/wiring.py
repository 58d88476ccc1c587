"""The services wired to each other over one set of ports (:func:`assemble`): what
:func:`~sketchgen.bootstrap.service.build_service` does once it has built the ports from the
settings, and what tests and hosts with their own ports call directly. Reads no settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sketchgen.clock import SYSTEM_CLOCK

if TYPE_CHECKING:
    from sketchgen.ports import BlobStore, Clock, FavouriteStore, ImageModel, JobStore, TaskQueue
    from sketchgen.quota import QuotaGate
    from sketchgen.references import ImageRetriever
    from sketchgen.services import ServiceConfig, SketchService
    from sketchgen.services.spending import SpendControl
    from sketchgen.services.styles import StyleService
    from sketchgen.styles import StyleRegistry


def assemble(
    *,
    jobs: JobStore,
    blobs: BlobStore,
    queue: TaskQueue,
    model: ImageModel,
    styles: StyleRegistry,
    retriever: ImageRetriever | None = None,
    config: ServiceConfig | None = None,
    gate: QuotaGate | None = None,
    spend: SpendControl | None = None,
    catalog: StyleService | None = None,
    favourites: FavouriteStore | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> SketchService:
    """The capabilities over one set of ports: what :func:`build_service` builds from the
    settings, and what tests and hosts with their own ports call directly. The one place
    the services are wired to each other."""
    from sketchgen.adapters.local.favourite_store import MemoryFavouriteStore
    from sketchgen.references import ImageRetriever
    from sketchgen.services import ServiceConfig, SketchService
    from sketchgen.services.batch import BatchRegeneration
    from sketchgen.services.stored import SketchRecorder, StoredJobs
    from sketchgen.services.studio import StudioService
    from sketchgen.services.submission import JobService
    from sketchgen.services.upkeep import Upkeep
    from sketchgen.services.worker import SketchWorker

    config = config or ServiceConfig()
    retriever = retriever or ImageRetriever()
    catalog = catalog or builtin_styles_catalog(styles, blobs, retriever, spend=spend)
    stored = StoredJobs(jobs=jobs, blobs=blobs, styles=styles, spend=spend)
    # One worker identity per process: the worker and the batch collection claim with it,
    # and the recorder's lease checks must see their own claims.
    recorder = SketchRecorder(
        jobs=jobs,
        blobs=blobs,
        stored=stored,
        adapter=model.name,
        max_deliveries=config.max_deliveries,
    )
    submission = JobService(
        jobs=jobs,
        blobs=blobs,
        queue=queue,
        model=model,
        styles=styles,
        stored=stored,
        retriever=retriever,
        config=config,
        spend=spend,
        catalog=catalog,
    )
    if favourites is None:  # the embedded default, as for the styles' catalog
        favourites = MemoryFavouriteStore()
    return SketchService(
        studio=StudioService(jobs=jobs, blobs=blobs, favourites=favourites, submission=submission),
        submission=submission,
        worker=SketchWorker(
            jobs=jobs,
            queue=queue,
            model=model,
            stored=stored,
            recorder=recorder,
            config=config,
            gate=gate,
            clock=clock,
        ),
        batch=BatchRegeneration(
            jobs=jobs,
            queue=queue,
            model=model,
            submission=submission,
            stored=stored,
            recorder=recorder,
            config=config,
            gate=gate,
        ),
        upkeep=Upkeep(jobs=jobs, queue=queue, stored=stored, reembed=catalog.reembed, clock=clock),
        stored=stored,
        jobs=jobs,
        blobs=blobs,
        queue=queue,
        model=model,
        styles=styles,
        spend=spend,
        catalog=catalog,
    )


def builtin_styles_catalog(
    builtins: StyleRegistry,
    blobs: BlobStore,
    retriever: ImageRetriever | None = None,
    *,
    spend: SpendControl | None = None,
) -> StyleService:
    """The built-in styles over an empty in-memory user-style store: what a service built
    without a style store has (a user style's id is then not found, as another user's is)."""
    from sketchgen.adapters.local.numpy_index import NumpyReferenceIndex
    from sketchgen.adapters.local.style_store import MemoryStyleStore
    from sketchgen.references import HashingTextEmbedding
    from sketchgen.services.styles import StyleService

    store = MemoryStyleStore()
    return StyleService(
        builtins=builtins,
        store=store,
        index=NumpyReferenceIndex(store),
        embedder=HashingTextEmbedding(),
        blobs=blobs,
        retriever=retriever,
        spend=spend,
    )
