"""The four capabilities built over one set of ports: what bootstrap builds and the entry
points receive. A bundle, not a facade: callers name the capability they use
(``service.worker.run_sketch``), so each caller's real dependencies stay visible
(docs/decisions/0009).
"""

from __future__ import annotations

from dataclasses import dataclass

from sketchgen.ports import BlobStore, ImageModel, JobStore, TaskQueue
from sketchgen.services.batch import BatchRegeneration
from sketchgen.services.erasure import UserErasure
from sketchgen.services.spending import SpendControl
from sketchgen.services.stored import StoredJobs
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
    a new bundle with :func:`sketchgen.bootstrap.assemble` instead.
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
