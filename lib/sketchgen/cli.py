"""The ``sketchgen`` command line.

Exit codes: 0 every sketch made, 1 some failed, 2 bad input (one line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import atexit
import gc
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn, TypeVar

from sketchgen._files import atomic_write_bytes
from sketchgen._front import DEFAULT_STYLE
from sketchgen.cli_styles import (
    OWNED_COMMANDS,
    SERVE_DIR,
    add_owned_style_commands,
    run_owned_style_command,
)
from sketchgen.cli_trace import add_trace_command, run_trace_command
from sketchgen.errors import InputError, SketchgenError
from sketchgen.exports import EXPORT_FORMATS
from sketchgen.image_models import OFFLINE_MODEL_ID
from sketchgen.schemas import ASPECT_RATIOS, IMAGE_SIZES, MAX_REFINE_IMAGES

if TYPE_CHECKING:
    from pydantic import BaseModel

    from sketchgen.bootstrap import Instance
    from sketchgen.bootstrap.library import LibraryJob
    from sketchgen.generate import SketchStream
    from sketchgen.schemas import PromptSpec, RetrievalResult, Style
    from sketchgen.services import SketchService

    _Request = TypeVar("_Request", bound=BaseModel)

__all__ = ["main"]


class _UsageError(InputError):
    """A command line argparse refuses; its message already names the argument."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse prints usage plus the message; we promise one line naming the problem.
        raise _UsageError(message)


def _num_images(text: str) -> int:
    from sketchgen.generate.config import MAX_IMAGES

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if not 1 <= value <= MAX_IMAGES:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_IMAGES}, not {value}")
    return value


def _refine_count(text: str) -> int:
    value = _num_images(text)
    if value > MAX_REFINE_IMAGES:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_REFINE_IMAGES}, not {value}")
    return value


def _validated(kind: type[_Request], /, **fields: Any) -> _Request:
    """The request as the HTTP API would take it: its limits, its messages (InputError)."""
    from pydantic import ValidationError

    from sketchgen.errors import first_problem

    try:
        return kind(**fields)
    except ValidationError as error:
        field, message = first_problem(error)
        raise InputError(message, field=field or None) from None


def _sketch_number(text: str) -> int:
    """A sketch's 0-based index from its 1-based number or its file name (``sketch_0.png``)."""
    import re

    named = re.fullmatch(r"sketch_(\d+)\.png", text.strip())
    if named:
        return int(named.group(1))
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a sketch number (1, 2, ...) or file name (sketch_0.png), not {text!r}"
        ) from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"sketches are numbered from 1, not {number}")
    return number - 1


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if not 0 <= value < 2**31:
        raise argparse.ArgumentTypeError("must be between 0 and 2147483647")
    return value


def _parser() -> _Parser:
    parser = _Parser(prog="sketchgen", description="Rough black-and-white concept sketches.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    gen = commands.add_parser("generate", help="make a job of sketches from a brief")
    gen.add_argument("brief", help='what to sketch, e.g. "playful golf mascot"')
    gen.add_argument("--style", default=DEFAULT_STYLE, help=f"style id (default {DEFAULT_STYLE})")
    gen.add_argument("-n", "--num-images", type=_num_images, default=4, metavar="N")
    gen.add_argument("--image-size", choices=tuple(IMAGE_SIZES), default="1K")
    gen.add_argument("--aspect-ratio", choices=ASPECT_RATIOS, default="1:1")
    gen.add_argument("--model", default=None, help="Gemini model id or alias (flash, pro)")
    gen.add_argument("--seed", type=_seed, default=None)
    gen.add_argument("--allow-text", action="store_true", help="allow lettering in sketches")
    gen.add_argument("--offline", action="store_true", help="use the offline sketch model")
    gen.add_argument("--output-dir", type=Path, default=None, metavar="DIR")
    gen.add_argument("--json", action="store_true", help="one JSON object per line on stdout")
    gen.add_argument(
        "--data-dir", type=Path, default=SERVE_DIR, help="where your own styles are (as serve's)"
    )

    refine = commands.add_parser("refine", help="redraw one sketch of a job with an instruction")
    refine.add_argument("job_dir", type=Path, help="the job's folder (holds metadata.json)")
    refine.add_argument(
        "sketch",
        type=_sketch_number,
        help="which sketch: its number as the page and this CLI show it (1 is sketch_0.png), "
        "or its file name (sketch_0.png)",
    )
    refine.add_argument("instruction", help='e.g. "more exaggerated", "turn the head left"')
    refine.add_argument("-n", "--num-images", type=_refine_count, default=1, metavar="N")
    refine.add_argument("--offline", action="store_true", help="use the offline sketch model")
    refine.add_argument("--output-dir", type=Path, default=None, metavar="DIR")
    refine.add_argument("--json", action="store_true", help="one JSON object per line on stdout")

    export = commands.add_parser(
        "export", help="a job's sketches as SVG, transparent PNG, PSD or OpenRaster"
    )
    export.add_argument("job_dir", type=Path, help="the job's folder (holds metadata.json)")
    export.add_argument("--format", required=True, choices=EXPORT_FORMATS)
    export.add_argument("--index", type=int, default=None, help="one sketch (default: all)")
    export.add_argument("--json", action="store_true", help="one JSON object per line on stdout")

    serve = commands.add_parser("serve", help="run the HTTP API locally on local adapters")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--data-dir", type=Path, default=SERVE_DIR)
    serve.add_argument("--offline", action="store_true", help="use the offline sketch model")

    regen = commands.add_parser(
        "regenerate",
        help="re-run saved jobs (`sketchgen serve`'s and the CLI's own) as new linked jobs",
    )
    which = regen.add_mutually_exclusive_group(required=True)
    which.add_argument("--style", dest="style_id", help="every original job of this style")
    which.add_argument("--jobs", dest="job_ids", nargs="+", metavar="JOB_ID")
    regen.add_argument(
        "--batch", action="store_true", help="through the model's Batch API (half price, slower)"
    )
    regen.add_argument(
        "--no-wait", dest="wait", action="store_false", help="submit and return; do not wait"
    )
    regen.add_argument("--poll", type=float, default=30.0, metavar="S", help="batch poll interval")
    regen.add_argument("--limit", type=int, default=100, metavar="N")
    regen.add_argument("--data-dir", type=Path, default=SERVE_DIR)
    regen.add_argument(
        "--output-dir", type=Path, default=None, metavar="DIR", help="the CLI's jobs' folder"
    )
    regen.add_argument("--offline", action="store_true", help="use the offline sketch model")

    accounts = commands.add_parser(
        "accounts", help="plans and per-user limits, in the configured store (admin)"
    )
    account_commands = accounts.add_subparsers(
        dest="accounts_command", required=True, parser_class=_Parser
    )
    set_account = account_commands.add_parser("set", help="set a user's plan or limits")
    set_account.add_argument("uid")
    set_account.add_argument("--plan", choices=("free", "pro"), default=None)
    set_account.add_argument("--daily-images", type=_count, default=None, metavar="N")
    set_account.add_argument("--active-jobs", type=_count, default=None, metavar="N")
    set_account.add_argument("--data-dir", type=Path, default=SERVE_DIR)
    show_account = account_commands.add_parser("show", help="a user's plan and today's usage")
    show_account.add_argument("uid")
    show_account.add_argument("--data-dir", type=Path, default=SERVE_DIR)

    usage = commands.add_parser(
        "usage", help="a user's images, cost and active jobs today, or the deployment's"
    )
    usage.add_argument("uid", nargs="?")
    usage.add_argument(
        "--deployment",
        action="store_true",
        help="today's spend against the deployment's ceiling (SKETCHGEN_DEPLOYMENT_DAILY_USD)",
    )
    usage.add_argument("--data-dir", type=Path, default=SERVE_DIR)

    styles = commands.add_parser("styles", help="list and show styles")
    style_commands = styles.add_subparsers(
        dest="styles_command", required=True, parser_class=_Parser
    )
    listing = style_commands.add_parser("list", help="built-in styles and your own")
    listing.add_argument("--json", action="store_true")
    listing.add_argument("--data-dir", type=Path, default=SERVE_DIR)
    show = style_commands.add_parser("show")
    show.add_argument("style_id")
    show.add_argument("--data-dir", type=Path, default=SERVE_DIR)
    add_owned_style_commands(style_commands)  # create, add-reference, rm (cli_styles)
    add_trace_command(commands)  # one job's waterfall from make dev's traces (cli_trace)
    return parser


class _Progress:
    """A one-line progress bar on stderr, only when a person is watching."""

    def __init__(self, total: int, stream: IO[str]) -> None:
        self.total, self.done, self.failed = total, 0, 0
        self.stream = stream
        self.enabled = stream.isatty()
        self.started = time.perf_counter()
        self._draw()

    def advance(self, failed: bool) -> None:
        self.done += 1
        self.failed += failed
        self._draw()

    def _draw(self) -> None:
        if not self.enabled:
            return
        width = 24
        filled = width * self.done // max(1, self.total)
        bar = "#" * filled + "-" * (width - filled)
        failed = f", {self.failed} failed" if self.failed else ""
        elapsed = time.perf_counter() - self.started
        self.stream.write(f"\r[{bar}] {self.done}/{self.total} sketches{failed} {elapsed:5.1f}s")
        if self.done == self.total:
            self.stream.write("\n")
        self.stream.flush()


def _emit(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


_exit_quickly = False


def _exit_without_a_last_collection() -> None:
    """At exit nothing is left to collect that matters (the files are written and closed),
    yet the interpreter's finalisation walks every object the run made (the SDK's types,
    pydantic's validators): 0.2-0.3 s of the command's time. Frozen first, they are not
    walked (docs/decisions/0066)."""
    global _exit_quickly
    if not _exit_quickly:
        _exit_quickly = True
        atexit.register(gc.freeze)


class _StartUp:
    """No garbage collection while a job starts: the imports, the plan and the SDK's import
    (on the generator's warm-up thread) make objects that live until exit, and the
    collector walked them again and again (~0.1 s of CPU before the first model call). The
    collector is as it was once the first sketch has come back (:meth:`over`), or when the
    command ends, whichever is first (docs/decisions/0066)."""

    def __enter__(self) -> _StartUp:
        self._resume = gc.isenabled()
        gc.disable()
        return self

    def over(self) -> None:
        if self._resume:
            self._resume = False
            gc.enable()

    def __exit__(self, *exc: object) -> None:
        self.over()


def _generate(args: argparse.Namespace) -> int:
    with _StartUp() as start_up:
        stream, total = _start_generate(args)
        return _report(stream, total, as_json=args.json, started=start_up.over)


def _start_generate(args: argparse.Namespace) -> tuple[SketchStream, int]:
    from sketchgen import bootstrap
    from sketchgen.jobs import JobRequest
    from sketchgen.prompt import PromptCompiler
    from sketchgen.references import ImageRetriever
    from sketchgen.styles.owned import is_user_style_id

    settings = bootstrap.read_settings()
    offline = bootstrap.offline_model_chosen(settings, args.model, args.offline)
    # Made, the generator prepares the SDK and its client in a thread while the job is planned.
    run = bootstrap.library_job(settings, offline=offline)
    request = _validated(
        JobRequest,
        brief=args.brief,
        style_id=args.style,
        num_images=args.num_images,
        image_size=args.image_size,
        aspect_ratio=args.aspect_ratio,
        model=args.model,
        seed=args.seed,
        allow_text=args.allow_text,
    )
    config = request.generation_config(
        default_model=run.model_name, output_dir=args.output_dir or run.output_dir
    )
    if is_user_style_id(request.style_id):
        style, prompt_spec, retrieval = _own_style_job(args.data_dir, request.brief, args.style)
    else:
        style = run.styles.get_style(request.style_id)
        prompt_spec = PromptCompiler().compile(request.brief, style)
        retrieval = ImageRetriever().retrieve(prompt_spec, style)
    stream = run.generator.generate_streaming(
        prompt_spec=prompt_spec, retrieval_result=retrieval, style=style, config=config
    )
    return stream, config.num_images


def _own_style_job(
    data_dir: Path, brief: str, style_id: str
) -> tuple[Style, PromptSpec, RetrievalResult]:
    """A job on a style of the local owner's: the style, the compiled brief and its
    references, retrieved by meaning as the service retrieves them, read from the folder."""
    from sketchgen import bootstrap
    from sketchgen.prompt import PromptCompiler
    from sketchgen.schemas import RetrievalResult, ScoredReference

    settings = bootstrap.local_settings(data_dir, offline=False)
    catalog = bootstrap.local_style_catalog(settings)
    if catalog is None:
        raise InputError(
            f"unknown style {style_id!r}: no styles of your own in {data_dir} "
            "(make one with `sketchgen styles create`)",
            field="style_id",
        )
    style = catalog.resolve(bootstrap.LOCAL_OWNER, style_id)
    prompt_spec = PromptCompiler().compile(brief, style)
    found = catalog.retrieve(prompt_spec, style)
    root = bootstrap.local_blob_folder(settings)
    # The library reads references from files: the blob keys, as paths in the blob folder.
    items = tuple(
        ScoredReference(
            reference=item.reference.model_copy(update={"path": str(root / item.reference.path)}),
            score=item.score,
        )
        for item in found.items
    )
    return style, prompt_spec, RetrievalResult(style_id=style.id, items=items)


def _refine(args: argparse.Namespace) -> int:
    with _StartUp() as start_up:
        stream, total = _start_refine(args)
        return _report(stream, total, as_json=args.json, started=start_up.over)


def _start_refine(args: argparse.Namespace) -> tuple[SketchStream, int]:
    from sketchgen import bootstrap
    from sketchgen.generate.refine import prepare_refinement
    from sketchgen.jobs import RefineRequest

    settings = bootstrap.read_settings()
    run = bootstrap.library_job(
        settings, offline=bootstrap.offline_model_chosen(settings, None, args.offline)
    )
    request = _validated(RefineRequest, instruction=args.instruction, num_images=args.num_images)
    job = prepare_refinement(
        args.job_dir,
        args.sketch,
        request.instruction,
        styles=run.styles,
        num_images=request.num_images,
        output_dir=args.output_dir,
    )
    stream = run.generator.generate_streaming(**job.kwargs())
    return stream, job.config.num_images


def _report(
    stream: SketchStream,
    total: int,
    *,
    as_json: bool,
    started: Callable[[], None] | None = None,
) -> int:
    """Progress on stderr, JSON lines on stdout if asked; the exit code. Sketches are
    numbered from 1 in what a person reads, as on the page and in the file names' order;
    JSON keeps the 0-based ``index`` that metadata.json and the API use. ``started`` is
    called when the first sketch has come back."""
    progress = _Progress(total, sys.stderr)
    began = time.perf_counter()
    try:
        for index, path, error in stream:
            if started is not None:
                started()
                started = None
            progress.advance(failed=error is not None)
            if as_json:
                elapsed = round(time.perf_counter() - began, 3)
                _emit(
                    {
                        "event": "sketch",
                        "index": index,
                        "path": str(path) if path else None,
                        "error": error,
                        "elapsed_s": elapsed,
                    }
                )
    except KeyboardInterrupt:
        # The stream recorded the folder as it stands (metadata.json: finished sketches,
        # the rest cancelled); say where, in one line, and exit as Ctrl-C does.
        from sketchgen.generate.generator import INTERRUPTED

        result = stream.abandon(INTERRUPTED)
        if progress.enabled:
            sys.stderr.write("\n")
        _fail(
            f"interrupted: {len(result.images)} of {total} sketches saved in "
            f"{result.output_dir} (metadata.json marks the rest cancelled)",
            130,
        )
        return 130
    result = stream.result
    if as_json:
        _emit(
            {
                "event": "done",
                "job_id": result.job_id,
                "output_dir": str(result.output_dir),
                "metadata_path": str(result.metadata_path),
                "images": [str(p) for p in result.images],
                "errors": {str(i): e for i, e in result.errors.items()},
                "model": result.metadata.model.model_dump(),
                "elapsed_s": round(time.perf_counter() - began, 3),
            }
        )
    else:
        model = result.metadata.model
        drawn_by = (
            f"the offline sketch model ({OFFLINE_MODEL_ID}), not Gemini"
            if model.adapter == "offline"
            else (model.used or model.requested)
        )
        parent = result.metadata.parent
        if parent is not None:
            print(f"refined from job {parent.job_id}, sketch {parent.index + 1}")
        print(f"{len(result.images)}/{total} sketches in {result.output_dir}, drawn by {drawn_by}")
        # One line per distinct reason: a network failure that failed every sketch is said
        # once, not once per sketch.
        by_reason: dict[str, list[int]] = {}
        for index, error in sorted(result.errors.items()):
            by_reason.setdefault(error, []).append(index + 1)
        for error, numbers in by_reason.items():
            which = ", ".join(map(str, numbers))
            print(
                f"  sketch{'es' if len(numbers) > 1 else ''} {which} failed: {error}",
                file=sys.stderr,
            )
    return 0 if result.ok else 1


def _styles(args: argparse.Namespace) -> int:
    from sketchgen import bootstrap

    if args.styles_command in OWNED_COMMANDS:
        service = _local_instance(args.data_dir, args.offline).service()
        return run_owned_style_command(args, service.catalog)

    from sketchgen.bootstrap import LOCAL_OWNER
    from sketchgen.styles.owned import is_user_style_id

    registry = bootstrap.build_style_registry()
    catalog = bootstrap.local_style_catalog(bootstrap.local_settings(args.data_dir, offline=False))
    if args.styles_command == "list":
        rows = [(s.id, s.name, s.description, "built-in") for s in registry.list_styles()]
        if catalog is not None:
            own = catalog.own_styles(LOCAL_OWNER)
            rows += [(d.style_id, d.name, d.description, LOCAL_OWNER) for d in own]
        if args.json:
            keys = ("id", "name", "description", "owner")
            _emit({"styles": [dict(zip(keys, row, strict=True)) for row in rows]})
        else:
            for style_id, name, _, owner in rows:
                print(
                    f"{style_id:24} {name}" + (f"  (yours: {owner})" if owner != "built-in" else "")
                )
        return 0
    if is_user_style_id(args.style_id) and catalog is not None:
        style = catalog.owned(LOCAL_OWNER, args.style_id).style
    else:
        style = registry.get_style(args.style_id)
    print(json.dumps(style.model_dump(mode="json"), indent=2))
    return 0


def _local_instance(data_dir: Path, offline: bool) -> Instance:
    """The service on local adapters in ``data_dir`` (SQLite jobs, a blob folder) and dev
    auth, unless the environment chose otherwise (:func:`sketchgen.bootstrap.local_settings`)."""
    from sketchgen import bootstrap

    return bootstrap.Instance(bootstrap.local_settings(data_dir, offline))


def _regenerate(args: argparse.Namespace) -> int:
    from sketchgen import bootstrap

    # The CLI's own jobs first (folders with metadata.json), with the library, as they ran.
    settings = bootstrap.read_settings()
    output_dir = args.output_dir or bootstrap.library_output_dir(settings)
    library = _library_jobs(output_dir, args.style_id, args.job_ids, args.limit)
    failed = False
    if library:
        offline = bootstrap.offline_model_chosen(settings, None, args.offline)
        run = bootstrap.library_job(settings, offline=offline)
        for record in _regenerate_library_jobs(library, run):
            failed |= record["status"] in {"failed", "partial"}
            print(json.dumps(record), flush=True)
    found = {Path(folder).name for folder in library}
    job_ids = [j for j in args.job_ids or () if j not in found] if args.job_ids else None
    if args.job_ids and not job_ids:
        return 1 if failed else 0
    service = _local_instance(args.data_dir, args.offline).service()
    jobs = service.batch.regenerate(
        style_id=args.style_id, job_ids=job_ids, batch=args.batch, limit=args.limit
    )
    if not jobs:
        if not library:
            print("sketchgen: nothing to regenerate", file=sys.stderr)
        return 1 if failed else 0
    ids = [job.job_id for job in jobs]
    if args.wait:
        while True:
            if args.batch:
                service.batch.collect_batches()
            join = getattr(service.queue, "join", None)
            if join is not None:
                join()  # the in-process queue: sketches run in this process
            current = service.jobs.list_jobs(job_ids=ids, limit=len(ids))
            if all(job.is_final for job in current):
                jobs = current
                break
            time.sleep(args.poll)
    for job in sorted(jobs, key=lambda j: j.job_id):
        failed |= job.status in {"failed", "partial"}
        record = {
            "job_id": job.job_id,
            "regenerated_from": job.regenerated_from,
            "status": job.status,
            "batch": job.batch.name if job.batch else None,
        }
        print(json.dumps(record), flush=True)
    return 1 if failed else 0


def _library_jobs(
    output_dir: Path, style_id: str | None, job_ids: Sequence[str] | None, limit: int
) -> list[Path]:
    """The CLI's (the library's) finished job folders to re-run: by id, or every original
    (not itself a regeneration) job of ``style_id``, newest first."""
    from pydantic import ValidationError

    from sketchgen.metadata import JOB_ID, JobMetadata

    if not output_dir.is_dir():
        return []
    if job_ids:
        folders = [output_dir / j for j in job_ids if JOB_ID.match(j)]
    else:
        folders = sorted((p for p in output_dir.iterdir() if JOB_ID.match(p.name)), reverse=True)
    chosen = []
    for folder in folders:
        try:
            meta = JobMetadata.model_validate_json((folder / "metadata.json").read_bytes())
        except (OSError, ValidationError):
            continue  # not a finished library job (or someone else's file)
        if meta.status == "running":
            continue
        if job_ids or (meta.style_id == style_id and meta.regenerated_from is None):
            chosen.append(folder)
        if len(chosen) >= limit:
            break
    return chosen


def _regenerate_library_jobs(folders: list[Path], run: LibraryJob) -> Iterator[dict[str, Any]]:
    """Each job again, as a new job beside it: its brief, size, model and seed, the style
    as it is now (the reason to regenerate); ``regenerated_from`` names the original."""
    from sketchgen.generate.config import GenerationConfig
    from sketchgen.generate.refine import load_job_metadata
    from sketchgen.prompt import PromptCompiler
    from sketchgen.references import ImageRetriever

    for folder in folders:
        original = load_job_metadata(folder)
        style = run.styles.get_style(original.style_id)
        prompt_spec = PromptCompiler().compile(original.prompt_spec.brief, style)
        c = original.config
        config = GenerationConfig(
            num_images=c.num_images,
            image_size=c.image_size,
            aspect_ratio=c.aspect_ratio,
            model_name=c.model_name,
            seed=c.seed,
            allow_text=c.allow_text,
            output_dir=folder.parent,
        )
        retrieval = ImageRetriever().retrieve(prompt_spec, style)
        result = run.generator.generate(
            prompt_spec=prompt_spec, retrieval_result=retrieval, style=style, config=config
        )
        # The link to the original, recorded in the new job's own metadata.json.
        linked = result.metadata.model_copy(update={"regenerated_from": original.job_id})
        atomic_write_bytes(result.metadata_path, linked.to_json())
        yield {
            "job_id": result.job_id,
            "regenerated_from": original.job_id,
            "status": linked.status,
            "batch": None,
            "output_dir": str(result.output_dir),
        }


def _spend(args: argparse.Namespace) -> int:
    """``accounts set|show`` and ``usage``: against the configured store (SKETCHGEN_JOB_STORE,
    e.g. ``firestore`` with FIRESTORE_EMULATOR_HOST on ``make dev``), else `serve`'s folder."""
    from sketchgen import bootstrap

    spend = bootstrap.build_spend_control(bootstrap.local_settings(args.data_dir, offline=True))
    if args.command == "accounts" and args.accounts_command == "set":
        if args.plan is None and args.daily_images is None and args.active_jobs is None:
            raise InputError("give --plan, --daily-images or --active-jobs", field="plan")
        account = spend.set_account(
            args.uid,
            plan=args.plan,
            daily_images=args.daily_images,
            active_jobs=args.active_jobs,
        )
        _emit({"uid": args.uid, **account.model_dump()})
        return 0
    if getattr(args, "deployment", False):
        if args.uid is not None:
            raise InputError("give a uid or --deployment, not both", field="uid")
        _emit({"deployment": True, **spend.deployment()})
        return 0
    if args.uid is None:
        raise InputError("give a uid (or --deployment)", field="uid")
    _emit({"uid": args.uid, **spend.usage(args.uid)})
    return 0


def _export(args: argparse.Namespace) -> int:
    """Write the job's sketches as ``--format`` beside them; one path (or JSON line) each."""
    from sketchgen.exports._files import export_folder

    indices = None if args.index is None else [args.index]
    for path in export_folder(args.job_dir, args.format, indices):
        if args.json:
            _emit({"event": "exported", "format": args.format, "path": str(path)})
        else:
            print(path)
    return 0


def _serve(args: argparse.Namespace) -> int:
    """One process: SQLite jobs, a folder of blobs, an in-process queue, dev auth."""
    from werkzeug.serving import run_simple

    from sketchgen import bootstrap

    instance = _local_instance(args.data_dir, args.offline)
    # dev auth is the default here: never in the cloud
    bootstrap.check_deployment_safety(instance.settings)
    app = instance.api()
    service = instance.service()  # build now so a bad setting fails before the port opens
    ended = end_interrupted_jobs(service)
    if ended:
        print(
            f"ended {len(ended)} job(s) left running when sketchgen serve last stopped "
            f"(finished sketches kept, the rest cancelled): {', '.join(ended)}",
            flush=True,
        )
    auth, model = bootstrap.describe_local_service(instance.settings)
    host = "127.0.0.1" if _unspecified(args.host) else args.host  # listening everywhere
    print(f"sketchgen API and page on http://{args.host}:{args.port} (auth: {auth})", flush=True)
    print(f"open http://{host}:{args.port}/ in a browser; sketches drawn by {model}", flush=True)
    run_simple(args.host, args.port, app, threaded=True, use_reloader=False)
    return 0


def _unspecified(host: str) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:  # a name, not an address
        return False


def end_interrupted_jobs(service: SketchService) -> list[str]:
    """End the jobs a stopped ``sketchgen serve`` left queued or running.

    ``serve`` runs its sketches in its own process (the in-process queue): when it stops,
    their tasks are gone and nothing would ever end those jobs, which would stay ``running``
    and hold their owners' active-job slots. On start, through the job store's own cancel
    and the service's own finaliser, each such job keeps its finished sketches, has the rest
    cancelled, gets its metadata.json and frees its slot. Jobs waiting on a model-side batch
    are left to ``regenerate`` (the batch lives on at the model).
    """
    ended = []
    for job in service.jobs.list_jobs(statuses=("queued", "running"), limit=10_000):
        if job.batch is not None:
            continue
        result = service.jobs.cancel_job(job.job_id, running=True)
        current = result.job or job
        if result.finalize or current.all_ended:
            service.stored.finalize_job(job.job_id)
        ended.append(job.job_id)
    return ended


def _fail(message: str, code: int) -> int:
    """One line on stderr, whatever the message quotes (control characters are escaped)."""
    line = "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in message)
    print(f"sketchgen: error: {line}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    _exit_without_a_last_collection()
    try:
        args = _parser().parse_args(argv)
        if args.command == "generate":
            return _generate(args)
        if args.command == "serve":
            return _serve(args)
        if args.command == "refine":
            return _refine(args)
        if args.command == "export":
            return _export(args)
        if args.command == "regenerate":
            return _regenerate(args)
        if args.command in {"accounts", "usage"}:
            return _spend(args)
        if args.command == "trace":
            return run_trace_command(args)
        return _styles(args)
    except SketchgenError as error:
        # The one mapping from the error tree to the command line: the class's exit code.
        where = f"{error.field}: " if isinstance(error, InputError) and error.field else ""
        return _fail(f"{where}{error}", error.exit_code)
    except OSError as error:
        # Almost always an output folder we cannot write (or a full disk): the user's to
        # fix, not a crash. Not every OSError names a file.
        where = f": {error.filename}" if error.filename else ""
        return _fail(f"{error.strerror or error}{where}", 2)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
