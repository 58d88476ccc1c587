"""The service, split by capability; each class takes only the ports it uses.

=====================  =================================================================
``submission``         :class:`JobService` — submit, read, cancel, refine; read a job's files
``worker``             :class:`SketchWorker` — one queue message: claim, quota, draw, record
``batch``              :class:`BatchRegeneration` — re-run saved jobs, Batch API batches
``upkeep``             :class:`Upkeep` — the scheduled sweep
``stored``             :class:`StoredJobs`, :class:`SketchRecorder` — shared: the stored
                       job as a plan, a claimed sketch's outcome, ``metadata.json``
``bundle``             :class:`SketchService` — all of them over one set of ports
=====================  =================================================================

:mod:`sketchgen.bootstrap` builds the bundle; the HTTP layer and the cloud functions are thin
wrappers around the capabilities' methods.
"""

from sketchgen.services.batch import BatchRegeneration
from sketchgen.services.bundle import SketchService
from sketchgen.services.config import ServiceConfig
from sketchgen.services.stored import SketchRecorder, StoredJobs
from sketchgen.services.submission import JobService
from sketchgen.services.upkeep import Upkeep
from sketchgen.services.worker import SketchWorker

__all__ = [
    "BatchRegeneration",
    "JobService",
    "ServiceConfig",
    "SketchRecorder",
    "SketchService",
    "SketchWorker",
    "StoredJobs",
    "Upkeep",
]
