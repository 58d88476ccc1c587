"""The ``sketchgen`` command line.

Exit codes: 0 every sketch made, 1 some failed, 2 bad input (one line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn, TypeVar

from sketchgen._front import DEFAULT_STYLE
from sketchgen.cli_styles import OWNED_COMMANDS, add_owned_style_commands, run_owned_style_command
from sketchgen.errors import InputError, SketchgenError
from sketchgen.schemas import ASPECT_RATIOS, IMAGE_SIZES, MAX_REFINE_IMAGES

if TYPE_CHECKING:
    from pydantic import BaseModel

    from sketchgen.generate import SketchStream

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

    try:
        return kind(**fields)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        raise InputError(str(first["msg"]), field=field) from None


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

    refine = commands.add_parser("refine", help="redraw one sketch of a job with an instruction")
    refine.add_argument("job_dir", type=Path, help="the job's folder (holds metadata.json)")
    refine.add_argument("index", type=int, help="which sketch")
    refine.add_argument("instruction", help='e.g. "more exaggerated", "turn the head left"')
    refine.add_argument("-n", "--num-images", type=_refine_count, default=1, metavar="N")
    refine.add_argument("--offline", action="store_true", help="use the offline sketch model")
    refine.add_argument("--output-dir", type=Path, default=None, metavar="DIR")
    refine.add_argument("--json", action="store_true", help="one JSON object per line on stdout")

    serve = commands.add_parser("serve", help="run the HTTP API locally on local adapters")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--data-dir", type=Path, default=Path("generated_outputs/serve"))
    serve.add_argument("--offline", action="store_true", help="use the offline sketch model")

    regen = commands.add_parser(
        "regenerate", help="re-run saved jobs of `sketchgen serve` as new linked jobs"
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
    regen.add_argument("--data-dir", type=Path, default=Path("generated_outputs/serve"))
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
    set_account.add_argument("--data-dir", type=Path, default=Path("generated_outputs/serve"))
    show_account = account_commands.add_parser("show", help="a user's plan and today's usage")
    show_account.add_argument("uid")
    show_account.add_argument("--data-dir", type=Path, default=Path("generated_outputs/serve"))

    usage = commands.add_parser("usage", help="a user's images, cost and active jobs today")
    usage.add_argument("uid")
    usage.add_argument("--data-dir", type=Path, default=Path("generated_outputs/serve"))

    styles = commands.add_parser("styles", help="list and show styles")
    style_commands = styles.add_subparsers(
        dest="styles_command", required=True, parser_class=_Parser
    )
    listing = style_commands.add_parser("list")
    listing.add_argument("--json", action="store_true")
    show = style_commands.add_parser("show")
    show.add_argument("style_id")
    add_owned_style_commands(style_commands)  # create, add-reference, rm (cli_styles)
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


def _generate(args: argparse.Namespace) -> int:
    from sketchgen.bootstrap import build_generator, build_style_registry
    from sketchgen.jobs import JobRequest
    from sketchgen.prompt import PromptCompiler
    from sketchgen.references import ImageRetriever
    from sketchgen.settings import get_settings

    settings = get_settings()
    # Made, the generator prepares the SDK and its client in a thread while the job is planned.
    generator = build_generator(settings, offline=True if args.offline else None)
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
    style = build_style_registry(settings).get_style(request.style_id)
    prompt_spec = PromptCompiler().compile(request.brief, style)
    config = request.generation_config(
        default_model=settings.gemini_model, output_dir=args.output_dir or settings.output_dir
    )
    retrieval = ImageRetriever().retrieve(prompt_spec, style, top_k=3)
    stream = generator.generate_streaming(
        prompt_spec=prompt_spec, retrieval_result=retrieval, style=style, config=config
    )
    return _report(stream, config.num_images, as_json=args.json)


def _refine(args: argparse.Namespace) -> int:
    from sketchgen.bootstrap import build_generator, build_style_registry
    from sketchgen.generate.refine import prepare_refinement
    from sketchgen.jobs import RefineRequest

    generator = build_generator(offline=True if args.offline else None)
    request = _validated(RefineRequest, instruction=args.instruction, num_images=args.num_images)
    job = prepare_refinement(
        args.job_dir,
        args.index,
        request.instruction,
        styles=build_style_registry(),
        num_images=request.num_images,
        output_dir=args.output_dir,
    )
    stream = generator.generate_streaming(**job.kwargs())
    return _report(stream, job.config.num_images, as_json=args.json)


def _report(stream: SketchStream, total: int, *, as_json: bool) -> int:
    """Progress on stderr, JSON lines on stdout if asked; the exit code."""
    progress = _Progress(total, sys.stderr)
    started = time.perf_counter()
    for index, path, error in stream:
        progress.advance(failed=error is not None)
        if as_json:
            elapsed = round(time.perf_counter() - started, 3)
            _emit(
                {
                    "event": "sketch",
                    "index": index,
                    "path": str(path) if path else None,
                    "error": error,
                    "elapsed_s": elapsed,
                }
            )
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
                "elapsed_s": round(time.perf_counter() - started, 3),
            }
        )
    else:
        print(f"{len(result.images)}/{total} sketches in {result.output_dir}")
        for index, error in sorted(result.errors.items()):
            print(f"  sketch {index} failed: {error}", file=sys.stderr)
    return 0 if result.ok else 1


def _styles(args: argparse.Namespace) -> int:
    from sketchgen.bootstrap import build_style_registry

    if args.styles_command in OWNED_COMMANDS:
        _use_local_service(args.data_dir, args.offline)
        return run_owned_style_command(args)

    registry = build_style_registry()
    if args.styles_command == "list":
        styles = registry.list_styles()
        if args.json:
            _emit(
                {
                    "styles": [
                        {"id": s.id, "name": s.name, "description": s.description} for s in styles
                    ]
                }
            )
        else:
            for s in styles:
                print(f"{s.id:24} {s.name}")
        return 0
    style = registry.get_style(args.style_id)
    print(json.dumps(style.model_dump(mode="json"), indent=2))
    return 0


def _use_local_service(data_dir: Path, offline: bool) -> None:
    """Point the service at local adapters in ``data_dir`` (SQLite jobs, a blob folder) and
    dev auth, unless the environment chose otherwise; handed to bootstrap as Settings."""
    from sketchgen import bootstrap
    from sketchgen.settings import get_settings

    settings = get_settings()
    data = data_dir.resolve()
    local = {
        "job_store": f"sqlite:///{data / 'jobs.sqlite3'}",
        "blob_url": f"file://{data / 'blobs'}",
        "auth": "dev",
    }
    update: dict[str, object] = {
        name: value for name, value in local.items() if name not in settings.model_fields_set
    }
    if offline:
        update["offline"] = True
    bootstrap.configure(settings.model_copy(update=update))


def _regenerate(args: argparse.Namespace) -> int:
    from sketchgen import bootstrap

    _use_local_service(args.data_dir, args.offline)
    service = bootstrap.service()
    jobs = service.batch.regenerate(
        style_id=args.style_id, job_ids=args.job_ids, batch=args.batch, limit=args.limit
    )
    if not jobs:
        print("sketchgen: nothing to regenerate", file=sys.stderr)
        return 0
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
    failed = False
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


def _spend(args: argparse.Namespace) -> int:
    """``accounts set|show`` and ``usage``: against the configured store (SKETCHGEN_JOB_STORE,
    e.g. ``firestore`` with FIRESTORE_EMULATOR_HOST on ``make dev``), else `serve`'s folder."""
    from sketchgen import bootstrap

    _use_local_service(args.data_dir, offline=True)
    spend = bootstrap.build_spend_control(bootstrap.current_settings())
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
    _emit({"uid": args.uid, **spend.usage(args.uid)})
    return 0


def _serve(args: argparse.Namespace) -> int:
    """One process: SQLite jobs, a folder of blobs, an in-process queue, dev auth."""
    from werkzeug.serving import run_simple

    from sketchgen import bootstrap

    _use_local_service(args.data_dir, args.offline)
    bootstrap.check_deployment_safety()  # dev auth is the default here: never in the cloud
    app = bootstrap.api()
    bootstrap.service()  # build now so a bad setting fails before the port opens
    auth = (
        "Bearer dev:<uid>" if bootstrap.current_settings().auth == "dev" else "Firebase ID tokens"
    )
    print(f"sketchgen API on http://{args.host}:{args.port} (auth: {auth})", flush=True)
    run_simple(args.host, args.port, app, threaded=True, use_reloader=False)
    return 0


def _fail(message: str, code: int) -> int:
    """One line on stderr, whatever the message quotes (control characters are escaped)."""
    line = "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in message)
    print(f"sketchgen: error: {line}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        if args.command == "generate":
            return _generate(args)
        if args.command == "serve":
            return _serve(args)
        if args.command == "refine":
            return _refine(args)
        if args.command == "regenerate":
            return _regenerate(args)
        if args.command in {"accounts", "usage"}:
            return _spend(args)
        return _styles(args)
    except SketchgenError as error:
        # The one mapping from the error tree to the command line: the class's exit code.
        where = f"{error.field}: " if isinstance(error, InputError) and error.field else ""
        return _fail(f"{where}{error}", error.exit_code)
    except OSError as error:
        # Almost always an output folder we cannot write: the user's to fix, not a crash.
        return _fail(f"{error.strerror}: {error.filename}", 2)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
