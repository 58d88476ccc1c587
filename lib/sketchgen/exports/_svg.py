"""SVG: the sketch's strokes traced into filled ``<path>`` outlines (vtracer, binary mode).

Binary mode thresholds the sketch and traces the ink shapes with their holes, so the paths
fill exactly where the strokes are; rasterised back they cover the PNG's ink (tests measure
it). Coordinates keep two decimals: enough at 4K, a third of the size of vtracer's default.
A white ``<rect>`` is the background layer a designer can delete or hide.
"""

from __future__ import annotations

import re

__all__ = ["to_svg"]

_PATH_PRECISION = 2
_SPECKLE_PX = 4  # specks smaller than this are the finisher's noise, not strokes
_SVG_OPEN = re.compile(r"<svg\b[^>]*>")


def to_svg(png: bytes) -> bytes:
    import vtracer

    from sketchgen.exports._layers import decode, encode

    gray = decode(png)
    traced: str = vtracer.convert_raw_image_to_svg(
        encode(gray),
        img_format="png",
        colormode="binary",
        mode="spline",
        filter_speckle=_SPECKLE_PX,
        path_precision=_PATH_PRECISION,
    )
    width, height = gray.size
    header = (
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}">'
        f'<rect id="background" width="{width}" height="{height}" fill="#ffffff"/>'
        '<g id="sketch">'
    )
    opened = _SVG_OPEN.search(traced)
    if opened is None:  # vtracer always writes one; a missing one is a broken dependency
        raise RuntimeError("vtracer returned no <svg> element")
    body = traced[opened.end() :].replace("</svg>", "")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{header}{body}</g></svg>\n'.encode()
