"""JSON from outside (a request body, a bearer token's segments, a push envelope), parsed only
when its nesting is shallow enough.

Python's decoder recurses once per ``[`` or ``{``: ``[[[[…]]]]`` a few thousand deep raises
``RecursionError``, which no ``except ValueError`` catches (a 500), and a depth just under the
interpreter's limit leaves too little stack for whoever walks the result next (pydantic, our
own code). So the depth is measured first, with two regular expressions (strings blanked, then
brackets counted: linear, no recursion), and text nested deeper than ``max_depth`` is refused
as :class:`JsonTooDeepError` before the decoder sees it.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["MAX_JSON_DEPTH", "JsonTooDeepError", "loads"]

# Our own payloads nest at most 3 deep (a job body, a JWT, a push envelope); 32 is generous.
MAX_JSON_DEPTH = 32
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


class JsonTooDeepError(ValueError):
    """The text nests arrays and objects deeper than allowed (a ValueError: it is not JSON
    we take, like any other malformed text)."""

    def __init__(self, max_depth: int) -> None:
        super().__init__(f"JSON nests arrays/objects deeper than {max_depth} levels")
        self.max_depth = max_depth


def loads(raw: bytes | str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` for untrusted text: :class:`JsonTooDeepError` past ``max_depth``; any
    other problem (not UTF-8/16/32, not JSON) a ``ValueError`` as ``json.loads`` raises."""
    text = raw if isinstance(raw, str) else raw.decode(json.detect_encoding(raw))
    depth = 0
    for bracket in _BRACKET.finditer(_STRING.sub('""', text)):
        if bracket.group() in "[{":
            depth += 1
            if depth > max_depth:
                raise JsonTooDeepError(max_depth)
        else:
            depth -= 1
    return json.loads(text)
