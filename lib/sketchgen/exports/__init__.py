"""Draw-over exports: a finished sketch as the first layer of a designer's drawing.

One entry point, :func:`export_sketch`, turns a sketch's PNG into one of
:data:`EXPORT_FORMATS`:

- ``svg``: the strokes vectorised (vtracer, binary mode) as filled ``<path>`` elements;
- ``png``: transparent background (white is alpha, ink kept);
- ``psd``: layered — a white background, the sketch on its own layer, an empty layer on top;
- ``ora``: OpenRaster with the same three layers (Krita, MyPaint, GIMP).

The library, the CLI, the API, the job archive and the page all export through here, and
take the file name and media type from :func:`export_name` and :func:`media_type`.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

from sketchgen.errors import InputError

__all__ = [
    "EXPORT_FORMATS",
    "ExportFormat",
    "checked_format",
    "export_name",
    "export_sketch",
    "media_type",
]

ExportFormat = Literal["svg", "png", "psd", "ora"]
EXPORT_FORMATS: Final[tuple[ExportFormat, ...]] = get_args(ExportFormat)

_MEDIA_TYPES: Final[dict[ExportFormat, str]] = {
    "svg": "image/svg+xml",
    "png": "image/png",
    "psd": "image/vnd.adobe.photoshop",
    "ora": "image/openraster",
}


def checked_format(value: str) -> ExportFormat:
    """``value`` as an export format, or :class:`InputError` naming ``format``."""
    for name in EXPORT_FORMATS:
        if value == name:
            return name
    raise InputError(f"unknown format {value!r}", field="format", allowed=EXPORT_FORMATS)


def media_type(fmt: ExportFormat) -> str:
    return _MEDIA_TYPES[fmt]


def export_name(index: int, fmt: ExportFormat) -> str:
    """``sketch_<i>.<ext>``; the transparent PNG is ``sketch_<i>.transparent.png`` so it never
    overwrites the sketch itself beside it."""
    return f"sketch_{index}.transparent.png" if fmt == "png" else f"sketch_{index}.{fmt}"


def export_sketch(png: bytes, fmt: ExportFormat) -> bytes:
    """The sketch ``png`` (a finished sketch: 8-bit, white ground, dark strokes) as ``fmt``."""
    if fmt == "svg":
        from sketchgen.exports._svg import to_svg

        return to_svg(png)
    if fmt == "png":
        from sketchgen.exports._layers import transparent_png

        return transparent_png(png)
    if fmt == "psd":
        from sketchgen.exports._psd import to_psd

        return to_psd(png)
    from sketchgen.exports._ora import to_ora

    return to_ora(png)
