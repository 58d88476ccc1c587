"""Styles that users own: the stored documents, and what a style's version is.

A user style is a :class:`StyleDoc` (``styles/{style_id}``, with ``owner_uid``) and its
:class:`ReferenceDoc` s (``styles/{style_id}/references/{sha256}``); the images themselves are
in the blob store under :func:`sketchgen.layout.style_reference_key`. Jobs see a user style as
the same :class:`~sketchgen.schemas.Style` a built-in one is (:func:`as_style`).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sketchgen.errors import InputError
from sketchgen.layout import style_reference_key
from sketchgen.schemas import ReferenceImage, Style
from sketchgen.text import MAX_TAG_CHARS, MAX_TAGS, clean_text, parse_tags

__all__ = [
    "MAX_DESCRIPTION_CHARS",
    "MAX_NAME_CHARS",
    "MAX_TAGS",
    "MAX_TAG_CHARS",
    "USER_STYLE_ID",
    "ReferenceDoc",
    "ReferencePatch",
    "StyleDoc",
    "StyleDraft",
    "StylePatch",
    "as_style",
    "is_sha256",
    "is_user_style_id",
    "new_style_id",
    "parse_tags",
    "style_version",
]

# Built-in ids are folder names chosen by us; user ids are minted here and never collide.
USER_STYLE_ID = re.compile(r"^u-[a-z0-9]{20}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
MAX_RULES = 30
MAX_RULE_CHARS = 300
MAX_NAME_CHARS = 80
MAX_DESCRIPTION_CHARS = 1000


def new_style_id() -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "u-" + "".join(secrets.choice(alphabet) for _ in range(20))


def is_user_style_id(style_id: str) -> bool:
    return bool(USER_STYLE_ID.fullmatch(style_id))


def is_sha256(value: str) -> bool:
    return bool(_SHA256.fullmatch(value))


def _now() -> datetime:
    return datetime.now(UTC)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# Every text field goes through sketchgen.text's one rule (cleaned, bounded) before pydantic
# sees it; an InputError raised here passes through pydantic and names the field.


def _name(value: object) -> object:
    return None if value is None else clean_text(value, field="name", max_chars=MAX_NAME_CHARS)


def _description(value: object) -> object:
    if value is None:
        return None
    return clean_text(value, field="description", max_chars=MAX_DESCRIPTION_CHARS, allow_empty=True)


def _rules_of(field: str) -> Callable[[object], object]:
    def clean(value: object) -> object:
        if value is None:
            return None
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise InputError(f"{field} must be a list of strings", field=field)
        if len(value) > MAX_RULES:
            raise InputError(f"at most {MAX_RULES} {field}", field=field)
        cleaned = (
            clean_text(rule, field=field, max_chars=MAX_RULE_CHARS, allow_empty=True)
            for rule in value
        )
        return tuple(rule for rule in cleaned if rule)

    return clean


def _tags(value: object) -> object:
    if value is None:
        return None
    if not isinstance(value, str | list | tuple):
        raise InputError("tags must be a list of strings", field="tags")
    return parse_tags(value)


class StyleDraft(_Model):
    """``POST /v1/styles``."""

    name: str
    description: str = ""
    rules: tuple[str, ...] = ()
    negative_rules: tuple[str, ...] = ()

    _clean_name = field_validator("name", mode="before")(_name)
    _clean_description = field_validator("description", mode="before")(_description)
    _clean_rules = field_validator("rules", mode="before")(_rules_of("rules"))
    _clean_negative = field_validator("negative_rules", mode="before")(_rules_of("negative_rules"))


class StylePatch(_Model):
    """``PATCH /v1/styles/{id}``: only the fields given change."""

    name: str | None = None
    description: str | None = None
    rules: tuple[str, ...] | None = None
    negative_rules: tuple[str, ...] | None = None

    _clean_name = field_validator("name", mode="before")(_name)
    _clean_description = field_validator("description", mode="before")(_description)
    _clean_rules = field_validator("rules", mode="before")(_rules_of("rules"))
    _clean_negative = field_validator("negative_rules", mode="before")(_rules_of("negative_rules"))


class ReferencePatch(_Model):
    """``PATCH /v1/styles/{id}/references/{sha256}``: tags through the same parser as an
    upload's (:func:`sketchgen.text.parse_tags`)."""

    do_not_use: bool | None = None
    tags: tuple[str, ...] | None = None
    description: str | None = None

    _clean_tags = field_validator("tags", mode="before")(_tags)
    _clean_description = field_validator("description", mode="before")(_description)


class StyleDoc(_Model):
    """``styles/{style_id}``. ``revision`` changes with every change to the reference set,
    so an index can tell its cached vectors are current."""

    style_id: str
    owner_uid: str
    name: str
    description: str = ""
    rules: tuple[str, ...] = ()
    negative_rules: tuple[str, ...] = ()
    revision: int = 0
    created_at: datetime = Field(default_factory=_now)
    updated_at: datetime = Field(default_factory=_now)


class ReferenceDoc(_Model):
    """``styles/{style_id}/references/{sha256}``; the vector records the model that made it."""

    sha256: str
    tags: tuple[str, ...] = ()
    description: str = ""
    do_not_use: bool = False
    width: int = 0
    height: int = 0
    embedding: tuple[float, ...] | None = None
    embedding_model: str | None = None
    created_at: datetime = Field(default_factory=_now)

    def text(self) -> str:
        """What is embedded: the description and tags (a document, in embedding terms)."""
        return " ".join((*self.tags, self.description)).strip()


def as_style(doc: StyleDoc, references: list[ReferenceDoc]) -> Style:
    """The style as jobs use it. A reference's ``path`` is its blob key (relative), where a
    built-in style's is a file path (absolute)."""
    return Style(
        id=doc.style_id,
        name=doc.name,
        description=doc.description,
        visual_rules=doc.rules,
        negative_rules=doc.negative_rules,
        references=tuple(
            ReferenceImage(
                path=style_reference_key(doc.style_id, r.sha256),
                sha256=r.sha256,
                tags=r.tags,
                description=r.description,
            )
            for r in sorted(references, key=lambda r: r.sha256)
        ),
        do_not_use=tuple(sorted(r.sha256 for r in references if r.do_not_use)),
    )


def style_version(style: Style) -> str:
    """A hash of what a job drawn in the style depends on: its rules and its reference set
    (which images, which of them are banned). Same for built-in and user styles."""
    banned = set(style.do_not_use)
    canonical = {
        "rules": list(style.visual_rules),
        "negative_rules": list(style.negative_rules),
        "references": sorted(
            [r.sha256, r.sha256 in banned or _name_banned(r, banned)] for r in style.references
        ),
    }
    digest = hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()
    return f"sv1-{digest[:24]}"


def _name_banned(reference: ReferenceImage, banned: set[str]) -> bool:
    name = reference.path.rsplit("/", 1)[-1]
    return name in banned
