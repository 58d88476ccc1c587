"""OpenRaster (https://www.openraster.org): a zip whose first entry is ``mimetype``, stored
uncompressed (how readers recognise the file), then ``stack.xml`` (the layers, top first), the
layer PNGs, ``mergedimage.png`` and ``Thumbnails/thumbnail.png``."""

from __future__ import annotations

import io
import zipfile
from xml.sax.saxutils import quoteattr

__all__ = ["MIMETYPE", "to_ora"]

MIMETYPE = b"image/openraster"
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry


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
    files: list[tuple[str, bytes, int]] = [  # PNGs are compressed already: stored
        ("mimetype", MIMETYPE, zipfile.ZIP_STORED),
        ("stack.xml", stack.encode(), zipfile.ZIP_DEFLATED),
        *((src, encode(image), zipfile.ZIP_STORED) for _, src, image in layers),
        ("mergedimage.png", encode(gray), zipfile.ZIP_STORED),
        ("Thumbnails/thumbnail.png", encode(thumbnail(gray)), zipfile.ZIP_STORED),
    ]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data, method in files:
            # A fixed timestamp: the same sketch always exports to the same bytes.
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.compress_type = method
            archive.writestr(info, data)
    return out.getvalue()
