"""The one cleaning rule for text a user gives us, on every path (HTTP create and PATCH, the
CLI, the library): briefs, refine instructions, style names, descriptions, rules and tags.

The rule: NFC, then every control, format, surrogate, private-use and unassigned character
(Unicode category ``C*``: NUL, ESC and terminal escapes, bidi overrides and isolates, zero-width
spaces, BOMs) is **removed**, whitespace runs become one space, the ends are trimmed, and the
result's length is bounded. Zero-width joiner and non-joiner are kept: emoji sequences and
Persian and Indic scripts need them, and they cannot reorder text.

Removed, not refused: none of these characters has a meaning in a sketch brief or a style's
name, and most arrive unseen in pasted text (soft hyphens, BOMs, bidi marks from a word
processor), which a user could not find to fix from an error message. What is stored is the
cleaned text, so nothing raw reaches a document, a prompt, a log line or a terminal. Lengths
are counted after cleaning (what is stored is what is bounded).

Tags go through one parser, :func:`parse_tags`, whether they come as a comma-separated form
field or CLI flag, or as a JSON list.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from sketchgen.errors import InputError

__all__ = ["MAX_TAGS", "MAX_TAG_CHARS", "clean_text", "parse_tags"]

MAX_TAGS = 20
MAX_TAG_CHARS = 40
_KEPT_FORMAT = frozenset({"\u200c", "\u200d"})  # ZWNJ, ZWJ


def _kept(ch: str) -> bool:
    return ch.isspace() or ch in _KEPT_FORMAT or unicodedata.category(ch)[0] != "C"


def clean_text(value: object, *, field: str, max_chars: int, allow_empty: bool = False) -> str:
    """``value`` cleaned by the rule above, or an :class:`InputError` naming ``field``."""
    if not isinstance(value, str):
        raise InputError(f"{field} must be a string", field=field)
    # Bounded before the work: a megabyte of spaces must not be normalised to be refused.
    if len(value) > 8 * max_chars + 64:
        raise InputError(f"{field} must be at most {max_chars} characters", field=field)
    kept = "".join(
        " " if ch.isspace() else ch for ch in unicodedata.normalize("NFC", value) if _kept(ch)
    )
    cleaned = " ".join(kept.split())
    if not cleaned and not allow_empty:
        raise InputError(f"{field} must not be empty", field=field)
    if len(cleaned) > max_chars:
        raise InputError(f"{field} must be at most {max_chars} characters", field=field)
    return cleaned


def parse_tags(raw: str | Iterable[object] | None) -> tuple[str, ...]:
    """Tags from a comma-separated string or a list: each cleaned, lower-cased, at most
    :data:`MAX_TAG_CHARS`; empty ones dropped; de-duplicated in order; at most
    :data:`MAX_TAGS`."""
    if raw is None:
        return ()
    if isinstance(raw, str):
        items: list[object] = list(raw.split(","))
    else:
        items = list(raw)
    if len(items) > 4 * MAX_TAGS:  # before cleaning each: a list of a million tags is refused
        raise InputError(f"at most {MAX_TAGS} tags", field="tags")
    seen: dict[str, None] = {}
    for item in items:
        tag = clean_text(item, field="tags", max_chars=MAX_TAG_CHARS, allow_empty=True).lower()
        if len(tag) > MAX_TAG_CHARS:  # lower() can lengthen (e.g. "İ" → "i̇")
            raise InputError(f"a tag is at most {MAX_TAG_CHARS} characters", field="tags")
        if tag:
            seen.setdefault(tag, None)
    if len(seen) > MAX_TAGS:
        raise InputError(f"at most {MAX_TAGS} tags", field="tags")
    return tuple(seen)
