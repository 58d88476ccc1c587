"""``ImageGenerator``: a job of N sketches, all at once, in four modes.

``generate_streaming_async`` is the one implementation (``asyncio`` and the model's async
client); ``generate_async`` drains it, and ``generate_streaming`` / ``generate`` are its
synchronous faces. Every mode yields ``(index, image_path, error)`` in completion order (the
streaming ones) and writes the PNGs and ``metadata.json`` the same way, also when some failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import queue
import signal
import threading
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, cast

from sketchgen.defaults import current_defaults
from sketchgen.errors import InputError, StorageError
from sketchgen.generate.config import GenerationConfig
from sketchgen.generate.pipeline import SketchOutcome, adraw_sketch, warm_up
from sketchgen.generate.plan import (
    JobPlan,
    PlanImages,
    Refinement,
    job_metadata,
    plan_job,
    read_images,
)
from sketchgen.generate.retry import RetryPolicy
from sketchgen.layout import LIBRARY, job_prefix, metadata_key, sketch_key
from sketchgen.metadata import JobMetadata, SketchRecord, new_job_id
from sketchgen.ports import BlobStore, ImageModel
from sketchgen.schemas import PromptSpec, RetrievalResult, Style

__all__ = ["AsyncSketchStream", "GenerationResult", "ImageGenerator", "SketchEvent", "SketchStream"]

SketchEvent = tuple[int, Path | None, str | None]
# What a sketch that had not finished when the job was stopped (Ctrl-C) records as its error.
INTERRUPTED = "interrupted (Ctrl-C) before this sketch finished"


@dataclass(frozen=True, slots=True)
class GenerationResult:
    """One finished job: where its files are, which sketches failed and why.

    ``output_dir`` is ``<config.output_dir>/<job_id>``; ``timestamp`` is when the job started,
    as the folder's name spells it (``YYYYMMDD_HHMMSS``, UTC). ``metadata.json`` has the same
    instant in ISO form.
    """

    job_id: str
    output_dir: Path
    images: list[Path]
    metadata_path: Path
    errors: dict[int, str]
    sketches: list[SketchRecord]
    metadata: JobMetadata = field(repr=False)
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def timestamp(self) -> str:
        # The job id is the timestamp plus a suffix that splits a second (new_job_id).
        return self.job_id.split("-", 1)[0]

    def export(self, index: int, format: str) -> Path:
        """Write sketch ``index`` as ``format`` (``svg``, ``png`` transparent, ``psd``,
        ``ora``: :mod:`sketchgen.exports`) beside it in :attr:`output_dir`; returns its path."""
        from sketchgen.exports import checked_format
        from sketchgen.exports._files import export_file

        return export_file(self.output_dir, index, checked_format(format))


class _Job:
    """One running job: its plan, its files, and the records as they come in.

    The files go through the blob-store port, as the service's do: here a folder store on
    the output folder, keyed by the library's layout (``layout.LIBRARY``).

    The folder is always complete or clearly partial: a sketch whose PNG cannot be written
    (a full disk) is recorded failed with the reason and the others go on; a job stopped
    part-way (Ctrl-C) is :meth:`abandon`-ed: ``metadata.json`` records what finished and
    marks the rest ``cancelled``, and nothing is written into the folder after that.
    """

    def __init__(
        self,
        plan: JobPlan,
        images: PlanImages,
        output_root: Path,
        started_at: datetime,
        blobs: BlobStore,
    ) -> None:
        self.plan = plan
        self.images = images
        self.root = Path(output_root)
        self.blobs = blobs
        self.folder = self.root / job_prefix(plan.job_id, root=LIBRARY)
        self.folder.mkdir(parents=True, exist_ok=False)  # the job's own: a clash is a bug
        self.records: dict[int, SketchRecord] = {}
        self.started = time.perf_counter()
        self.started_at = started_at
        # Held while a file is written, so abandon() never races a half-written PNG.
        self._lock = threading.Lock()
        self._ended: GenerationResult | None = None
        # metadata.json from the start, every sketch pending: a folder whose process died
        # says what it was; and its space is held for the final one on a filling disk.
        try:
            self._write_metadata(self._metadata(self._pending(), provisional=True))
        except StorageError:
            with contextlib.suppress(OSError):
                self.folder.rmdir()  # nothing of this job is kept on a disk already full
            raise

    def store(self, outcome: SketchOutcome) -> SketchEvent:
        with self._lock:
            if self._ended is not None:  # abandoned: the folder is already recorded
                return outcome.record.index, None, outcome.record.error
            return self._store(outcome)

    def _store(self, outcome: SketchOutcome) -> SketchEvent:
        record = outcome.record  # priced with the metadata (job_metadata), as the service's
        path = None
        if outcome.png is not None and record.file:
            key = sketch_key(self.plan.job_id, record.index, root=LIBRARY)
            try:
                self.blobs.put(key, outcome.png, "image/png")
                path = self.root / key
            except OSError as error:
                # The model's call is spent; the sketch is failed with the reason, and the
                # job goes on to record it (the blob store removed its temporary file).
                reason = error.strerror or type(error).__name__
                record = record.model_copy(
                    update={
                        "status": "failed",
                        "file": None,
                        "error": f"could not write {record.file}: {reason}",
                    }
                )
        self.records[record.index] = record
        return record.index, path, record.error

    def close(self) -> GenerationResult:
        with self._lock:
            if self._ended is None:
                self._ended = self._record(self.records)
            return self._ended

    def abandon(self, reason: str) -> GenerationResult:
        """Record the job as it stands: finished sketches as they are, the rest
        ``cancelled`` with ``reason``; nothing is written into the folder afterwards."""
        with self._lock:
            if self._ended is None:
                records = {**self._pending("cancelled", reason), **self.records}
                self._ended = self._record(records)
            return self._ended

    def _pending(
        self, status: Literal["pending", "cancelled"] = "pending", error: str | None = None
    ) -> dict[int, SketchRecord]:
        """A record for every planned sketch that has not ended, as ``status``."""
        return {
            v.index: self.plan.sketch(v.index, status=status, error=error)
            for v in self.plan.variations
        }

    def _metadata(
        self, records: dict[int, SketchRecord], *, provisional: bool = False
    ) -> JobMetadata:
        return job_metadata(
            self.plan,
            records.values(),
            timestamp=self.started_at,
            elapsed_s=None if provisional else round(time.perf_counter() - self.started, 3),
        )

    def _write_metadata(self, metadata: JobMetadata) -> Path:
        """Writes ``metadata.json``, or raises :class:`StorageError` in one line.

        Atomically when it can; on a full disk (no room for the new copy beside the old)
        over the old one in place, in the space it already holds.
        """
        key = metadata_key(self.plan.job_id, root=LIBRARY)
        path, data = self.root / key, metadata.to_json()
        try:
            self.blobs.put(key, data, "application/json")
        except OSError as error:
            if error.errno == errno.ENOSPC and path.is_file():
                with contextlib.suppress(OSError), path.open("r+b") as handle:
                    handle.write(data)
                    handle.truncate()
                    return path
            saved = sum(s.status == "ok" for s in metadata.sketches)
            raise StorageError(
                f"could not write metadata.json in {self.folder}: "
                f"{error.strerror or type(error).__name__} "
                f"({saved} of {len(metadata.sketches)} sketches were saved)"
            ) from None
        return path

    def _record(self, records: dict[int, SketchRecord]) -> GenerationResult:
        metadata = self._metadata(records)
        sketches = metadata.sketches  # as metadata.json has them, priced
        metadata_path = self._write_metadata(metadata)
        elapsed = metadata.elapsed_s or 0.0
        return GenerationResult(
            job_id=self.plan.job_id,
            output_dir=self.folder,
            images=[self.folder / s.file for s in sketches if s.status == "ok" and s.file],
            metadata_path=metadata_path,
            errors={s.index: s.error or "failed" for s in sketches if s.status != "ok"},
            sketches=sketches,
            metadata=metadata,
            elapsed_s=elapsed,
        )


class AsyncSketchStream:
    """``async for`` over ``(index, image_path, error)`` as sketches finish; then ``result``.

    The one implementation of a job's run: every sketch's drawing in flight at once on the
    event loop, each stored as it ends. :class:`SketchStream` is its synchronous face.
    """

    def __init__(self, job: _Job, model: ImageModel, policy: RetryPolicy) -> None:
        self._job, self._model, self._policy = job, model, policy
        self._result: GenerationResult | None = None

    @property
    def size(self) -> int:
        return len(self._job.plan.variations)

    @property
    def result(self) -> GenerationResult:
        if self._result is None:
            raise RuntimeError("the stream has not been consumed to the end yet")
        return self._result

    def abandon(self, reason: str) -> GenerationResult:
        """Stop recording: ``metadata.json`` says what finished; the rest are cancelled."""
        self._result = self._job.abandon(reason)
        return self._result

    async def __aiter__(self) -> AsyncIterator[SketchEvent]:
        plan = self._job.plan
        tasks = [
            asyncio.ensure_future(
                adraw_sketch(
                    self._model, plan.request(i, self._job.images), self._policy, plan.job_id
                )
            )
            for i in range(len(plan.variations))
        ]
        try:
            for next_done in asyncio.as_completed(tasks):
                outcome = await next_done
                yield await asyncio.to_thread(self._job.store, outcome)
        finally:
            # Even if the caller stops early, every sketch is stored and recorded.
            for outcome in await asyncio.gather(*tasks):
                if outcome.record.index not in self._job.records:
                    self._job.store(outcome)
            self._result = await asyncio.to_thread(self._job.close)


_END = object()


def _leave_ctrl_c_to_the_main_thread() -> None:
    """Called first in every thread this module starts (threads they start inherit it).

    The kernel hands a process's SIGINT to any thread that does not block it. Python runs
    the handler only in the main thread, and only once that thread wakes: if another thread
    took the signal while the main thread waited on the stream's queue, nothing woke it and
    Ctrl-C did nothing (one run in two on a loaded machine). Blocked here, SIGINT can only
    reach the main thread, whose wait it interrupts."""
    if hasattr(signal, "pthread_sigmask"):  # POSIX; elsewhere signals go to the main thread
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})


class SketchStream:
    """Iterate for ``(index, image_path, error)`` as sketches finish; then read ``result``.

    A thin synchronous wrapper: the :class:`AsyncSketchStream` runs on its own event loop in
    a background thread and hands each event over as it comes. If the caller stops early the
    job still runs to its end (every sketch stored, ``metadata.json`` written) before the
    iteration returns.
    """

    def __init__(self, stream: AsyncSketchStream) -> None:
        self._stream = stream

    @property
    def result(self) -> GenerationResult:
        return self._stream.result

    def abandon(self, reason: str) -> GenerationResult:
        """Record the job as it stands now (idempotent): see :meth:`AsyncSketchStream.abandon`."""
        return self._stream.abandon(reason)

    def __iter__(self) -> Iterator[SketchEvent]:
        events: queue.SimpleQueue[object] = queue.SimpleQueue()
        thread = threading.Thread(
            target=self._run, args=(events,), name="sketchgen-job", daemon=True
        )
        thread.start()
        try:
            while (item := events.get()) is not _END:
                if isinstance(item, BaseException):
                    raise item
                yield cast(SketchEvent, item)  # the queue carries events, errors and _END
        except KeyboardInterrupt:
            # Ctrl-C means now: the job's thread is a daemon, its calls in flight are dropped;
            # the folder is recorded as it stands first, so it is clearly partial.
            self._stream.abandon(INTERRUPTED)
            raise
        except BaseException:
            thread.join()  # the caller stopped early: the job still ends and is recorded
            raise
        thread.join()

    def _run(self, events: queue.SimpleQueue[object]) -> None:
        _leave_ctrl_c_to_the_main_thread()  # and to the executor's threads, started from here

        async def pump() -> None:
            # Room for every sketch's model call and its finishing at once, as a thread per
            # sketch had; an event loop's default executor is sized by CPUs, not by calls.
            workers = 2 * self._stream.size + 2
            asyncio.get_running_loop().set_default_executor(
                ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sketch")
            )
            async for event in self._stream:
                events.put(event)

        try:
            asyncio.run(pump())
        except BaseException as error:  # handed to the caller's thread, raised there
            events.put(error)
        finally:
            events.put(_END)


class ImageGenerator:
    """Makes a job's sketches concurrently; one failed sketch never takes the others down.

    ``model`` is the adapter to draw with; without one, the configured default (Nano Banana
    when ``GEMINI_API_KEY`` is set, else the offline sketch model; ``offline=True`` asks for
    the offline one), the same whether the class was imported from ``sketchgen`` or
    ``sketchgen.generate``. The library reads no settings itself: the defaults come from
    :mod:`sketchgen.defaults`, which ``import sketchgen`` fills from the settings.

    Made, it starts preparing the model's client and the finisher in a thread (:meth:`warm_up`;
    ``warm=False`` leaves that to the first call): the caller plans its job meanwhile, and the
    first ``generate()`` finds the SDK imported instead of importing it before its first call.
    """

    def __init__(
        self,
        model: ImageModel | None = None,
        *,
        retry: RetryPolicy | None = None,
        offline: bool | None = None,
        warm: bool = True,
    ) -> None:
        self.model: ImageModel = (
            model if model is not None else current_defaults().image_model(offline=offline)
        )
        self.retry = retry or RetryPolicy(max_attempts=current_defaults().max_attempts())
        self._warming: threading.Thread | None = None
        if warm:
            self._warming = threading.Thread(target=self._warm_quietly, name="warm-up", daemon=True)
            self._warming.start()

    def _warm_quietly(self) -> None:
        _leave_ctrl_c_to_the_main_thread()
        # A failure here (an SDK that cannot import) is the first call's to report.
        with suppress(Exception):
            warm_up(self.model)

    def wait_warm(self, timeout_s: float | None = None) -> bool:
        """Wait for the warm-up this generator started when it was made: True once it has
        finished; False if none was started (``warm=False``) or it still runs after
        ``timeout_s``."""
        if self._warming is None:
            return False
        self._warming.join(timeout_s)
        return not self._warming.is_alive()

    def warm_up(self) -> None:
        """Prepare the model client and the finisher once, so the first ``generate()`` costs
        what the second does. Optional (the first call does it otherwise); safe in a thread
        started while the job is planned, which is what the CLI does."""
        warm_up(self.model)

    def _start(
        self,
        prompt_spec: PromptSpec,
        retrieval_result: RetrievalResult | None,
        style: Style | None,
        config: GenerationConfig,
        refinement: Refinement | None,
    ) -> _Job:
        # A compiled brief alone is a whole job: no references, the spec's own style.
        if retrieval_result is None:
            retrieval_result = RetrievalResult(style_id=prompt_spec.style_id)
        style_id = style.id if style is not None else prompt_spec.style_id
        if prompt_spec.style_id != style_id or retrieval_result.style_id != style_id:
            raise InputError(
                "prompt_spec, retrieval_result and style must be for the same style",
                field="style_id",
            )
        # One instant names the folder (the job id) and stamps metadata.json.
        started_at = datetime.now(UTC)
        plan = plan_job(
            job_id=new_job_id(started_at),
            prompt_spec=prompt_spec,
            retrieval=retrieval_result,
            config=config,
            model=self.model,
            refinement=refinement,
        )
        # The plan names its references; their files are read here, once, for the drawing.
        images = read_images(
            plan,
            lambda reference: Path(reference.path).read_bytes(),
            refinement.image if refinement is not None else None,
        )
        root = Path(config.output_dir)
        blobs: BlobStore = current_defaults().folder_store(root)
        return _Job(plan, images, root, started_at, blobs)

    def generate_streaming(
        self,
        prompt_spec: PromptSpec,
        retrieval_result: RetrievalResult | None = None,
        style: Style | None = None,
        config: GenerationConfig | None = None,
        *,
        refinement: Refinement | None = None,
    ) -> SketchStream:
        job = self._start(
            prompt_spec, retrieval_result, style, config or GenerationConfig(), refinement
        )
        return SketchStream(AsyncSketchStream(job, self.model, self.retry))

    def generate_streaming_async(
        self,
        prompt_spec: PromptSpec,
        retrieval_result: RetrievalResult | None = None,
        style: Style | None = None,
        config: GenerationConfig | None = None,
        *,
        refinement: Refinement | None = None,
    ) -> AsyncSketchStream:
        job = self._start(
            prompt_spec, retrieval_result, style, config or GenerationConfig(), refinement
        )
        return AsyncSketchStream(job, self.model, self.retry)

    def generate(
        self,
        prompt_spec: PromptSpec,
        retrieval_result: RetrievalResult | None = None,
        style: Style | None = None,
        config: GenerationConfig | None = None,
        *,
        refinement: Refinement | None = None,
    ) -> GenerationResult:
        stream = self.generate_streaming(
            prompt_spec=prompt_spec,
            retrieval_result=retrieval_result,
            style=style,
            config=config,
            refinement=refinement,
        )
        for _ in stream:
            pass
        return stream.result

    async def generate_async(
        self,
        prompt_spec: PromptSpec,
        retrieval_result: RetrievalResult | None = None,
        style: Style | None = None,
        config: GenerationConfig | None = None,
        *,
        refinement: Refinement | None = None,
    ) -> GenerationResult:
        stream = self.generate_streaming_async(
            prompt_spec=prompt_spec,
            retrieval_result=retrieval_result,
            style=style,
            config=config,
            refinement=refinement,
        )
        async for _ in stream:
            pass
        return stream.result
