#!/usr/bin/env python3
"""Stage and zip the Cloud Functions sources (``make build``).

For each function folder under ``functions/`` this stages ``build/functions/<name>/`` with the
folder's ``main.py`` and ``requirements.txt`` plus a copy of the ``sketchgen`` package, and zips
it to ``build/functions/<name>-<sha256[:12]>.zip``. ``manifest.json`` beside the zips maps each
name to its zip (relative to the manifest); Terraform reads it and uploads each zip under that
name, so only functions whose content changed are redeployed.

The zips are reproducible: entries sorted, timestamps and permissions fixed, and stored without
compression, so the bytes (and the hash in the name) depend on the files' content only, not on
the machine, the checkout time or the zlib version.

    python scripts/build_functions.py [--src-root DIR] [--out DIR] [NAME ...]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import sys
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = ["FUNCTIONS", "BuildError", "build", "main"]


DEFINITION = Path(__file__).resolve().parents[1] / "infra" / "functions.yaml"


def _sources(definition: Path = DEFINITION) -> tuple[str, ...]:
    """The function folders the deployment uses (infra/functions.yaml: each function's source)."""
    import yaml

    functions = yaml.safe_load(definition.read_text())["functions"]
    return tuple(sorted({spec["source"] for spec in functions.values()}))


FUNCTIONS = _sources()
PACKAGE = "sketchgen"
# sketchgen.testing (the local Gemini server) is for tests: nothing in the cloud imports it.
_EXCLUDED_DIRS = frozenset(
    {"__pycache__", "tests", "testing", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
)
_EXCLUDED_SUFFIXES = (".pyc", ".pyo")
_EXCLUDED_NAMES = frozenset({".DS_Store"})
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can hold
_FILE_MODE = 0o100644  # regular file, rw-r--r--


class BuildError(Exception):
    """A function folder cannot be built (missing file); the message says which."""


def _package_files(package_dir: Path) -> Iterator[Path]:
    for path in sorted(package_dir.rglob("*")):
        relative = path.relative_to(package_dir)
        if any(part in _EXCLUDED_DIRS for part in relative.parts):
            continue
        excluded = path.suffix in _EXCLUDED_SUFFIXES or path.name in _EXCLUDED_NAMES
        if path.is_file() and not excluded:
            yield path


def _stage(name: str, src_root: Path, stage_dir: Path) -> None:
    function_dir = src_root / "functions" / name
    package_dir = src_root / "lib" / PACKAGE
    required = {
        function_dir / "main.py": "the function's entry point",
        function_dir / "requirements.txt": "the dependencies deployed with the function",
        package_dir / "__init__.py": f"the {PACKAGE} package copied next to main.py",
    }
    for path, what in required.items():
        if not path.is_file():
            relative = path.relative_to(src_root)
            raise BuildError(f"{relative} is missing ({what}); cannot build function {name!r}")

    if stage_dir.exists():
        shutil.rmtree(stage_dir)
    stage_dir.mkdir(parents=True)
    shutil.copy2(function_dir / "main.py", stage_dir / "main.py")
    shutil.copy2(function_dir / "requirements.txt", stage_dir / "requirements.txt")
    for path in _package_files(package_dir):
        target = stage_dir / PACKAGE / path.relative_to(package_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def _zip_bytes(stage_dir: Path) -> bytes:
    files = sorted(
        (path.relative_to(stage_dir).as_posix(), path)
        for path in stage_dir.rglob("*")
        if path.is_file()
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for arcname, path in files:
            info = zipfile.ZipInfo(arcname, date_time=_ZIP_DATE)
            info.create_system = 3  # unix, so external_attr means a file mode on every machine
            info.external_attr = _FILE_MODE << 16
            info.compress_type = zipfile.ZIP_STORED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def build(src_root: Path, out_dir: Path, names: Sequence[str] = FUNCTIONS) -> dict[str, Path]:
    """Stage and zip ``names``; write ``manifest.json``; return ``{name: zip path}``."""
    src_root = src_root.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    zips: dict[str, Path] = {}
    for name in names:
        stage_dir = out_dir / name
        _stage(name, src_root, stage_dir)
        data = _zip_bytes(stage_dir)
        zip_path = out_dir / f"{name}-{hashlib.sha256(data).hexdigest()[:12]}.zip"
        for stale in out_dir.glob(f"{name}-*.zip"):
            if stale != zip_path and len(stale.stem) == len(name) + 13:
                stale.unlink()
        if not zip_path.exists() or zip_path.read_bytes() != data:
            zip_path.write_bytes(data)
        zips[name] = zip_path

    manifest_path = out_dir / "manifest.json"
    manifest = {name: zips[name].name for name in sorted(zips)}
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return zips


def main(argv: Sequence[str] | None = None) -> int:
    repo_root = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "names", nargs="*", default=list(FUNCTIONS), help=f"functions (default: {FUNCTIONS})"
    )
    parser.add_argument(
        "--src-root",
        type=Path,
        default=repo_root,
        help="tree with functions/<name>/ and lib/sketchgen/ (default: this repo)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="output folder (default: SRC_ROOT/build/functions)"
    )
    args = parser.parse_args(argv)
    out_dir = args.out or args.src_root / "build" / "functions"
    try:
        zips = build(args.src_root, out_dir, args.names)
    except BuildError as error:
        print(f"build_functions: {error}", file=sys.stderr)
        return 2
    for name, path in zips.items():
        print(f"{name}: {path}")
    print(f"manifest: {out_dir / 'manifest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
