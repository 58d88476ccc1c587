"""Styles live on disk, one folder each::

    <root>/<style_id>/style.json
    <root>/<style_id>/references/*.png

Reference images are identified by the SHA-256 of their bytes: the same image listed twice
(under any name) is kept once, and ``do_not_use`` may name a file or a digest.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sketchgen._files import atomic_write_bytes
from sketchgen.defaults import current_defaults
from sketchgen.errors import InputError, StyleDefinitionError, UnknownStyleError
from sketchgen.schemas import ReferenceImage, Style

__all__ = ["PACKAGED_STYLES_DIR", "StyleRegistry"]

PACKAGED_STYLES_DIR = Path(__file__).parent / "data"
STYLE_FILE = "style.json"
_MAX_REFERENCE_BYTES = 8 * 1024 * 1024


class _ReferenceEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    file: str
    tags: tuple[str, ...] = ()
    description: str = ""


class _StyleFile(BaseModel):
    """The on-disk shape of ``style.json``."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str
    name: str
    description: str = ""
    visual_rules: tuple[str, ...] = ()
    references: tuple[_ReferenceEntry, ...] = Field(default=())
    do_not_use: tuple[str, ...] = ()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class StyleRegistry:
    """Reads (and, for a writable root, adds and deletes) styles.

    ``root`` defaults to the configured styles folder (``SKETCHGEN_STYLES_DIR``, through
    :mod:`sketchgen.defaults`), else the styles shipped with the package. Loaded styles are
    cached; ``add_style``/``delete_style`` keep it current.
    """

    def __init__(self, root: Path | str | None = None) -> None:
        if root is None:
            root = current_defaults().styles_dir() or PACKAGED_STYLES_DIR
        self.root = Path(root)
        self._cache: dict[str, Style] = {}
        self._lock = threading.Lock()

    # -- reading -----------------------------------------------------------------------

    @property
    def loaded(self) -> frozenset[str]:
        """The ids of the styles read and held (each is read once, on first use)."""
        with self._lock:
            return frozenset(self._cache)

    def style_ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.parent.name for p in self.root.glob(f"*/{STYLE_FILE}"))

    def list_styles(self) -> list[Style]:
        return [self.get_style(style_id) for style_id in self.style_ids()]

    def get_style(self, style_id: str) -> Style:
        if not isinstance(style_id, str) or style_id not in self.style_ids():
            raise UnknownStyleError(str(style_id), self.style_ids())
        with self._lock:
            style = self._cache.get(style_id)
            if style is None:
                style = self._cache[style_id] = self._load(self.root / style_id)
            return style

    def reference_bytes(self, reference: ReferenceImage) -> bytes:
        return Path(reference.path).read_bytes()

    def _load(self, folder: Path) -> Style:
        try:
            raw = _StyleFile.model_validate_json((folder / STYLE_FILE).read_bytes())
        except (OSError, ValidationError) as error:
            raise StyleDefinitionError(f"{folder / STYLE_FILE}: {error}", field="style") from None
        if raw.id != folder.name:
            raise StyleDefinitionError(
                f"style.json id {raw.id!r} does not match its folder {folder.name!r}", field="id"
            )
        seen: set[str] = set()
        references: list[ReferenceImage] = []
        for entry in raw.references:
            path = (folder / entry.file).resolve()
            if not path.is_relative_to(folder.resolve()) or not path.is_file():
                raise StyleDefinitionError(
                    f"style {raw.id!r}: reference {entry.file!r} is not a file in its folder",
                    field="references",
                )
            digest = _sha256(path)
            if digest in seen:
                continue
            seen.add(digest)
            references.append(
                ReferenceImage(
                    path=str(path),
                    sha256=digest,
                    tags=entry.tags,
                    description=entry.description,
                )
            )
        try:
            return Style(
                id=raw.id,
                name=raw.name,
                description=raw.description,
                visual_rules=raw.visual_rules,
                references=tuple(references),
                do_not_use=raw.do_not_use,
            )
        except ValidationError as error:
            raise StyleDefinitionError(str(error), field="id") from None

    # -- writing -----------------------------------------------------------------------

    def add_style(
        self,
        style_id: str,
        name: str,
        *,
        description: str = "",
        visual_rules: Sequence[str] = (),
        references: Iterable[Path | str | tuple[Path | str, Sequence[str]]] = (),
        do_not_use: Sequence[str] = (),
        replace: bool = False,
    ) -> Style:
        """Create a style folder; reference files are copied in under their SHA-256.

        ``references`` are paths, or ``(path, tags)`` pairs. The same image given twice is
        stored once.
        """
        try:
            Style(id=style_id, name=name)
        except ValidationError:
            raise InputError(
                "style id must be 1-64 lowercase letters, digits, '-' or '_'", field="style_id"
            ) from None
        folder = self.root / style_id
        if (folder / STYLE_FILE).exists() and not replace:
            raise InputError(f"style {style_id!r} already exists", field="style_id")
        entries: list[dict[str, object]] = []
        seen: set[str] = set()
        staged: list[tuple[str, bytes]] = []
        for item in references:
            source, tags = item if isinstance(item, tuple) else (item, ())
            data = Path(source).read_bytes()
            if len(data) > _MAX_REFERENCE_BYTES:
                raise InputError(f"reference {source} is larger than 8 MiB", field="references")
            digest = hashlib.sha256(data).hexdigest()
            if digest in seen:
                continue
            seen.add(digest)
            suffix = Path(source).suffix.lower() or ".png"
            rel = f"references/{digest[:16]}{suffix}"
            staged.append((rel, data))
            entries.append({"file": rel, "tags": list(tags), "description": Path(source).stem})
        for rel, data in staged:
            atomic_write_bytes(folder / rel, data)
        document = {
            "id": style_id,
            "name": name,
            "description": description,
            "visual_rules": list(visual_rules),
            "references": entries,
            "do_not_use": list(do_not_use),
        }
        atomic_write_bytes(folder / STYLE_FILE, json.dumps(document, indent=2).encode() + b"\n")
        with self._lock:
            self._cache.pop(style_id, None)
        return self.get_style(style_id)

    def delete_style(self, style_id: str) -> None:
        if style_id not in self.style_ids():
            raise UnknownStyleError(style_id, self.style_ids())
        shutil.rmtree(self.root / style_id)
        with self._lock:
            self._cache.pop(style_id, None)
