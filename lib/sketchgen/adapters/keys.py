"""Blob keys: relative, '/'-separated, and never able to leave the store's root."""

from __future__ import annotations

import re

from sketchgen.errors import InputError

__all__ = ["check_key"]

_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_key(key: str) -> str:
    """The key itself if every segment is a plain name; otherwise an InputError.

    Stricter than any store needs, on purpose: no '..', no absolute paths, no backslashes,
    no control characters, no empty segments — whatever the backend would make of them.
    """
    parts = key.split("/") if isinstance(key, str) else []
    if not parts or len(key) > 512 or not all(_SEGMENT.fullmatch(p) for p in parts):
        raise InputError(f"invalid blob key {key!r}", field="key")
    return key
