"""PSD (psd-tools): a white Background, the Sketch as ink on transparency, and an empty
Drawing layer on top, each the sketch's size, with the flattened sketch as the composite so
viewers that read no layers still show it."""

from __future__ import annotations

import io

__all__ = ["to_psd"]


def to_psd(png: bytes) -> bytes:
    from psd_tools import PSDImage
    from psd_tools.api.layers import PixelLayer
    from psd_tools.constants import Compression

    from sketchgen.exports._layers import decode, empty_layer, ink_layer, white_layer

    gray = decode(png)
    # RGBA: psd-tools stores a layer's alpha as its transparency only in a document with an
    # alpha channel (in an RGB one it becomes a layer mask). The composite is RLE-compressed:
    # psd-tools' default there is raw, 4 bytes a pixel (4 MB at 1K, 64 MB at 4K).
    document = PSDImage.new(
        "RGBA", gray.size, color=(255, 255, 255, 255), compression=Compression.RLE
    )
    for name, image in (
        ("Background", white_layer(gray.size)),
        ("Sketch", ink_layer(gray)),
        ("Drawing", empty_layer(gray.size)),
    ):
        document.append(PixelLayer.frompil(image, document, name=name))
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()
