"""The style registry: one folder per style with ``style.json`` and its reference images."""

from sketchgen.styles.registry import PACKAGED_STYLES_DIR, StyleRegistry

__all__ = ["PACKAGED_STYLES_DIR", "StyleRegistry"]
