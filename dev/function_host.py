"""Run one function of ``infra/functions.yaml`` as Cloud Functions runs it.

``python -m dev.function_host NAME --port N``: functions-framework loads the function's
``main.py`` and serves it as the deployed runtime does: ``create_app`` gives a Flask app for a
sync function, served by gunicorn threads, and a Starlette app for an async one
(``functions_framework.aio``, the stream function), which ``create_server`` serves with
gunicorn's uvicorn worker. The environment is the
one ``make dev`` built from the definition; nothing here adds a variable. Before the function
loads, the process is held to the definition's grants (:mod:`dev.permissions`), as IAM holds
the deployed function; ``--resources`` names the topics and buckets behind the grants' keys.
"""

from __future__ import annotations

import argparse
import json
import os

from dev.definition import REPO, load_definition
from dev.permissions import Resources, install

__all__ = ["main"]

_SIGNATURES = {"http": "http", "push": "http", "event": "cloudevent"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dev.function_host", description=__doc__)
    parser.add_argument("function")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--resources", type=json.loads, required=True)
    args = parser.parse_args(argv)
    spec = load_definition().functions[args.function]
    install(spec.name, spec.may, Resources(**args.resources))

    # The Cloud Functions runtime names the entry point in FUNCTION_TARGET (telemetry's
    # service name, where K_SERVICE is not set); make dev's host does the same.
    os.environ["FUNCTION_TARGET"] = spec.entry_point
    from functions_framework import create_app
    from functions_framework._http import create_server

    source = REPO / "functions" / spec.source / "main.py"
    app = create_app(spec.entry_point, str(source), _SIGNATURES[spec.trigger.type])
    create_server(app, False, post_fork=_die_with_master).run("127.0.0.1", args.port)
    return 0


def _die_with_master(server: object, worker: object) -> None:
    """gunicorn's ``post_fork``, in the worker: die with the master, as the master dies with
    ``make dev`` (``setpriv --pdeathsig``). gunicorn's thread worker notices a dead master by
    itself; the uvicorn worker of an async function does not, and would keep the port."""
    import ctypes
    import os
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: nothing to arm
        return
    if os.getppid() != getattr(server, "pid", os.getppid()):  # it died before that
        os._exit(1)


if __name__ == "__main__":
    raise SystemExit(main())
