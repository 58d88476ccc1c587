"""The visual rules in numbers: one definition, read by ``measure()`` and by the style guard.

A sketch is something a designer draws over, so the rules describe paper and ink, not taste.

- **Clean background**: at least ``min_border_white`` (95 %) of the outer ``border`` (5 % of
  each side) is paper, i.e. at least ``paper_level`` (245). A photograph, a dark ground or a
  vignette fails here first.
- **No gradients, no shading** ("minimal midtone"): at most ``max_midtone`` (12 %) of all
  pixels lie in ``midtone_low..midtone_high`` (40..215). The anti-aliased rim of a stroke is
  grey too, which is why the limit is not zero; a shaded render or a photograph is far above.
- **Amount of ink**: the share of pixels darker than ``ink_level`` (128) lies within
  ``min_dark..max_dark`` (0.5 %..40 %). Below, nothing was drawn; above, the image is a fill,
  a silhouette or texture, not outlines.
- **No solid fills**: at most ``max_fill`` (2 %) of the picture, counted in cells of
  1/``fill_cells`` (1/32) of the long side, is solid ink (cell mean below ``fill_level``, 64,
  i.e. about three quarters ink). Outlines of 6-10 px never fill a 32 px cell that much; a
  silhouette, a cast shadow or stippled shading does. Dot eyes stay well under 2 %.
- **Thick outlines**: strokes are ``stroke_px_1k`` (6 px) wide on the long side of a 1K image
  and scale with the size (24 px at 4K); the styles ask for 6-10 px, so the guard draws the
  thinnest weight they allow, and a designer's own line still stands out over it.
- **Minimal interior detail**: a converted drawing keeps only strokes of at least
  ``min_stroke_length`` (4 %) of the long side; shorter marks are texture, fur, grain or
  noise. If what is left after that is less than ``min_structure`` (25 %) of the ink the line
  extraction found, the picture was mostly texture and is not converted.
- **Coherent shapes**: at least ``min_coherence`` (50 %) of a converted drawing's line ink
  lies in strokes at least ``coherent_length`` (15 %) of the long side long. Outlines of a
  head, a cup or a coin are; the scattered dashes left of fur, a blurred face or a textured
  wash are not, and such a drawing is a puzzle, not something to draw over.

The first four are what ``SketchQA.passed`` checks on every delivered image; the last two
are how the guard draws when it has to redraw an image as line art, and the last one
whether that drawing is worth delivering.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["RULES", "VisualRules"]


class VisualRules(BaseModel):
    """Thresholds of the visual rules (see the module docstring for what each one means)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    border: float = Field(0.05, gt=0.0, lt=0.5)
    paper_level: int = Field(245, ge=0, le=255)
    min_border_white: float = Field(0.95, ge=0.0, le=1.0)
    midtone_low: int = Field(40, ge=0, le=255)
    midtone_high: int = Field(215, ge=0, le=255)
    max_midtone: float = Field(0.12, ge=0.0, le=1.0)
    ink_level: int = Field(128, ge=1, le=255)
    min_dark: float = Field(0.005, ge=0.0, le=1.0)
    max_dark: float = Field(0.40, ge=0.0, le=1.0)
    fill_cells: int = Field(32, ge=1)
    fill_level: int = Field(64, ge=1, le=255)
    max_fill: float = Field(0.02, ge=0.0, le=1.0)
    stroke_px_1k: float = Field(6.0, gt=0.0)
    min_stroke_length: float = Field(0.04, ge=0.0, lt=1.0)
    min_structure: float = Field(0.25, ge=0.0, le=1.0)
    coherent_length: float = Field(0.15, ge=0.0, lt=1.0)
    min_coherence: float = Field(0.5, ge=0.0, le=1.0)

    def passes(self, border_white: float, midtone: float, dark: float, fill: float) -> bool:
        return (
            border_white >= self.min_border_white
            and midtone <= self.max_midtone
            and self.min_dark <= dark <= self.max_dark
            and fill <= self.max_fill
        )


RULES = VisualRules()
