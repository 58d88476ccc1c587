"""The one limit on the pixels of any image this process decodes: an uploaded reference and a
model's answer alike. Pillow's decompression-bomb guard is process-wide
(``Image.MAX_IMAGE_PIXELS``: a warning past it, an error past twice it), so it is set here,
once, to this limit; whoever decodes an image imports this module first. Callers may refuse
fewer pixels (a reference upload checks its own limit from the header, before decoding), never
more.
"""

from __future__ import annotations

from PIL import Image

__all__ = ["MAX_IMAGE_PIXELS"]

# 5000 × 5000. The largest image a model returns (4K, 1:1) is 4096 × 4096 ≈ 16.8 M.
MAX_IMAGE_PIXELS = 25_000_000

Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
