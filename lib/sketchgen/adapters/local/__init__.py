"""Local adapters: real implementations that need no cloud account."""

from sketchgen.adapters.local.blob_store import LocalBlobStore
from sketchgen.adapters.local.job_store import MemoryJobStore, SqliteJobStore
from sketchgen.adapters.local.quota_gate import MemoryQuotaGate
from sketchgen.adapters.local.task_queue import InlineTaskQueue

__all__ = [
    "InlineTaskQueue",
    "LocalBlobStore",
    "MemoryJobStore",
    "MemoryQuotaGate",
    "SqliteJobStore",
]
