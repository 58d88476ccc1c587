"""OpenRaster (https://www.openraster.org): a zip whose first entry is ``mimetype``, stored
uncompressed (how readers recognise the file), then ``stack.xml`` (the layers, top first), the
layer PNGs, ``mergedimage.png`` and ``Thumbnails/thumbnail.png``."""

from __future__ import annotations

import io
import zipfile
from xml.sax.saxutils import quoteattr

__all__ = ["MIMETYPE", "to_ora"]

MIMETYPE = b"image/openraster"


def to_ora(png: bytes) -> bytes:
    from sketchgen.exports._layers import (
        decode,
        empty_layer,
        encode,
        ink_layer,
        thumbnail,
        white_layer,
    )

    gray = decode(png)
    width, height = gray.size
    layers = (  # top first, as stack.xml lists them
        ("Drawing", "data/drawing.png", empty_layer(gray.size)),
        ("Sketch", "data/sketch.png", ink_layer(gray)),
        ("Background", "data/background.png", white_layer(gray.size)),
    )
    entries = "".join(
        f'<layer name={quoteattr(name)} src={quoteattr(src)} x="0" y="0" '
        'opacity="1.0" visibility="visible"/>'
        for name, src, _ in layers
    )
    stack = (
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        f'<image version="0.0.5" w="{width}" h="{height}"><stack>{entries}</stack></image>\n'
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), MIMETYPE, compress_type=zipfile.ZIP_STORED)
        archive.writestr("stack.xml", stack, compress_type=zipfile.ZIP_DEFLATED)
        for _, src, image in layers:  # PNGs are compressed already
            archive.writestr(src, encode(image), compress_type=zipfile.ZIP_STORED)
        archive.writestr("mergedimage.png", encode(gray), compress_type=zipfile.ZIP_STORED)
        archive.writestr(
            "Thumbnails/thumbnail.png", encode(thumbnail(gray)), compress_type=zipfile.ZIP_STORED
        )
    return out.getvalue()
