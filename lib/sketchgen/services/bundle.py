"""The four capabilities built over one set of ports: what bootstrap builds and the entry
points receive. A bundle, not a facade: callers name the capability they use
(``service.worker.run_sketch``), so each caller's real dependencies stay visible
(docs/decisions/0009).
"""

from __future__ import annotations

from dataclasses import dataclass

from sketchgen.clock import SYSTEM_CLOCK
from sketchgen.ports import BlobStore, Clock, FavouriteStore, ImageModel, JobStore, TaskQueue
from sketchgen.quota import QuotaGate
from sketchgen.references import ImageRetriever
from sketchgen.services.batch import BatchRegeneration
from sketchgen.services.config import ServiceConfig
from sketchgen.services.erasure import UserErasure
from sketchgen.services.spending import SpendControl
from sketchgen.services.stored import SketchRecorder, StoredJobs
from sketchgen.services.studio import StudioService
from sketchgen.services.styles import StyleService
from sketchgen.services.submission import JobService
from sketchgen.services.upkeep import Upkeep
from sketchgen.services.worker import SketchWorker
from sketchgen.styles import StyleRegistry

__all__ = ["SketchService"]


@dataclass(frozen=True, slots=True)
class SketchService:
    """The capabilities, and the ports they were built over (the HTTP layer signs blob URLs,
    lists styles and watches jobs; tests and the CLI look at the queue).

    Frozen: replacing a port here would not reach the capabilities already holding it — build
    a new bundle with :meth:`from_ports` instead.
    """

    submission: JobService
    worker: SketchWorker
    batch: BatchRegeneration
    upkeep: Upkeep
    stored: StoredJobs
    jobs: JobStore
    blobs: BlobStore
    queue: TaskQueue
    model: ImageModel
    styles: StyleRegistry
    # Built-in and user styles (issue 16): what the style routes and the upkeep use.
    catalog: StyleService
    # History, favourites, exports, variations, deleting (issue 27).
    studio: StudioService
    spend: SpendControl | None = None

    @property
    def erasure(self) -> UserErasure:
        """``DELETE /v1/me``: everything a user owns, over the same ports."""
        return UserErasure(
            jobs=self.jobs,
            blobs=self.blobs,
            catalog=self.catalog,
            favourites=self.studio.favourites,
            spend=self.spend,
        )

    @classmethod
    def from_ports(
        cls,
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
        config = config or ServiceConfig()
        retriever = retriever or ImageRetriever()
        catalog = catalog or StyleService.builtins_only(styles, blobs, retriever, spend=spend)
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
            from sketchgen.adapters.local.favourite_store import MemoryFavouriteStore

            favourites = MemoryFavouriteStore()
        return cls(
            studio=StudioService(
                jobs=jobs, blobs=blobs, favourites=favourites, submission=submission
            ),
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
            upkeep=Upkeep(
                jobs=jobs, queue=queue, stored=stored, reembed=catalog.reembed, clock=clock
            ),
            stored=stored,
            jobs=jobs,
            blobs=blobs,
            queue=queue,
            model=model,
            styles=styles,
            spend=spend,
            catalog=catalog,
        )
