"""``sketchgen styles create | add-reference | rm``: styles a user owns, on the service's
stores (as ``sketchgen serve`` and ``regenerate`` use them: ``--data-dir``, or what the
environment configures, e.g. Firestore and a bucket for an operator).

``create NAME --from-folder DIR`` uploads every PNG, JPEG and WebP in DIR, with tags and a
description from a sidecar ``references.json`` when there is one::

    {"golfer.png": {"tags": ["golf", "mascot"], "description": "golfer mid-swing"}}

and from the file name otherwise (``golf-mascot_2.png`` → tags ``golf, mascot, 2``). Each
image goes through the same checks as an upload over HTTP; one that fails is reported and
skipped, and the command exits 1.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sketchgen.errors import InputError, SketchgenError

if TYPE_CHECKING:
    from sketchgen.services.styles import StyleService

__all__ = ["OWNED_COMMANDS", "SERVE_DIR", "add_owned_style_commands", "run_owned_style_command"]

# `sketchgen serve`'s folder: its jobs, blobs and the styles you make here.
SERVE_DIR = Path("generated_outputs/serve")

OWNED_COMMANDS = frozenset({"create", "add-reference", "rm"})
SIDECAR = "references.json"
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp"}


def add_owned_style_commands(commands: Any) -> None:
    """Adds the commands to ``sketchgen styles``' subparsers."""

    from sketchgen.bootstrap import LOCAL_OWNER

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--owner", default=LOCAL_OWNER, help=f"the owner's uid (default: {LOCAL_OWNER})"
        )
        parser.add_argument("--data-dir", type=Path, default=SERVE_DIR)
        parser.add_argument("--offline", action="store_true", help="offline embedding")

    create = commands.add_parser("create", help="a style of your own, from a folder of images")
    create.add_argument("name")
    create.add_argument("--from-folder", type=Path, metavar="DIR")
    create.add_argument("--description", default="")
    create.add_argument("--rule", action="append", default=[], help="a drawing rule (repeat)")
    create.add_argument("--negative-rule", action="append", default=[], help="never this")
    common(create)

    add = commands.add_parser("add-reference", help="upload one reference image to your style")
    add.add_argument("style_id")
    add.add_argument("image", type=Path)
    add.add_argument("--tags", default="", help="comma-separated")
    add.add_argument("--description", default="")
    common(add)

    rm = commands.add_parser("rm", help="delete your style, or one of its references")
    rm.add_argument("style_id")
    rm.add_argument("--reference", metavar="SHA256", help="delete only this reference")
    common(rm)


def run_owned_style_command(args: argparse.Namespace, catalog: StyleService) -> int:
    """Runs on ``catalog``: the style catalog of the service the CLI built for
    ``--data-dir`` (as ``serve`` builds it)."""
    from sketchgen.styles.owned import StyleDraft, parse_tags

    if args.styles_command == "rm":
        if args.reference:
            catalog.delete_reference(args.owner, args.style_id, args.reference)
        else:
            catalog.delete_style(args.owner, args.style_id)
        return 0
    if args.styles_command == "add-reference":
        reference, created = catalog.add_reference(
            args.owner,
            args.style_id,
            args.image.read_bytes(),
            tags=parse_tags(args.tags),
            description=args.description,
        )
        _print({"sha256": reference.sha256, "created": created})
        return 0
    draft = StyleDraft(
        name=args.name,
        description=args.description,
        rules=tuple(args.rule),
        negative_rules=tuple(args.negative_rule),
    )
    entries = _folder_entries(args.from_folder) if args.from_folder else []
    style = catalog.create_style(args.owner, draft)
    added, failed = [], 0
    for path, tags, description in entries:
        try:
            reference, _ = catalog.add_reference(
                args.owner, style.style_id, path.read_bytes(), tags=tags, description=description
            )
        except SketchgenError as error:
            failed += 1
            print(f"sketchgen: skipped {path.name}: {error}", file=sys.stderr)
            continue
        added.append({"file": path.name, "sha256": reference.sha256, "tags": list(tags)})
    _print({"style_id": style.style_id, "references": added, "skipped": failed})
    return 1 if failed else 0


def _folder_entries(folder: Path) -> list[tuple[Path, tuple[str, ...], str]]:
    """``(image, tags, description)`` for every image in ``folder``, sorted by name."""
    from sketchgen.styles.owned import parse_tags

    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder", field="--from-folder")
    sidecar: dict[str, Any] = {}
    if (folder / SIDECAR).is_file():
        try:
            raw = json.loads((folder / SIDECAR).read_text())
        except ValueError as error:
            raise InputError(f"{SIDECAR}: {error}", field=SIDECAR) from None
        items = raw.items() if isinstance(raw, dict) else ((e.get("file"), e) for e in raw)
        sidecar = {str(name): entry for name, entry in items if isinstance(entry, dict)}
    entries = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in _IMAGE_SUFFIXES or not path.is_file():
            continue
        words = [w for w in re.split(r"[\W_]+", path.stem.lower()) if w]
        entry = sidecar.get(path.name)
        if entry is not None:
            tags = entry.get("tags", [])
            tag_text = tags if isinstance(tags, str) else ",".join(map(str, tags))
            entries.append((path, parse_tags(tag_text), str(entry.get("description", ""))))
        else:
            entries.append((path, parse_tags(",".join(words)), " ".join(words)))
    return entries


def _print(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()
