"""PSD (psd-tools): a white Background, the Sketch as ink on transparency, and an empty
Drawing layer on top, each the sketch's size, with the flattened sketch as the composite so
viewers that read no layers still show it."""

from __future__ import annotations

import io

__all__ = ["to_psd"]


def to_psd(png: bytes) -> bytes:
    from PIL import Image
    from psd_tools import PSDImage
    from psd_tools.api.layers import PixelLayer
    from psd_tools.constants import Compression

    from sketchgen.exports._layers import decode, empty_layer, ink_layer, white_layer

    gray = decode(png)
    # The composite is known exactly: the layers flatten to the sketch itself (ink over white
    # gives the grey back). RGBA: psd-tools stores a layer's alpha as its transparency only in
    # a document with an alpha channel (in an RGB one it becomes a layer mask). RLE: its
    # default for the composite is raw, 4 bytes a pixel (64 MB at 4K).
    opaque = Image.new("L", gray.size, 255)
    document = PSDImage.frompil(
        Image.merge("RGBA", (gray, gray, gray, opaque)), compression=Compression.RLE
    )
    for name, image in (
        ("Background", white_layer(gray.size)),
        ("Sketch", ink_layer(gray)),
        ("Drawing", empty_layer(gray.size)),
    ):
        document.append(PixelLayer.frompil(image, document, name=name))
    # Appending marks the stored composite stale, and save() would re-render it from the
    # layers in float64 numpy (2.5 s at 1K, minutes at 4K on a loaded machine) to get the
    # same pixels. psd-tools has no public switch for "the composite is right": clear the
    # flag its mark_updated() sets. Tests check the composite against the sketch.
    document._updated = False
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()
