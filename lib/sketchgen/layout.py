"""The output layout, in one place: a job's files and where they are kept.

The library writes ``<output_dir>/<job_id>/{sketch_<i>.png, metadata.json}``; the service
writes the same names under ``jobs/<job_id>/`` in its blob store, plus a refinement's
``input.png``. Both, and the HTTP API that links to them, take the names from here.
"""

from __future__ import annotations

__all__ = [
    "INPUT_FILE",
    "METADATA_FILE",
    "input_key",
    "job_prefix",
    "metadata_key",
    "sketch_file",
    "sketch_key",
    "style_prefix",
    "style_reference_key",
]

METADATA_FILE = "metadata.json"
INPUT_FILE = "input.png"


def sketch_file(index: int) -> str:
    return f"sketch_{index}.png"


def job_prefix(job_id: str) -> str:
    return f"jobs/{job_id}"


def sketch_key(job_id: str, index: int) -> str:
    return f"{job_prefix(job_id)}/{sketch_file(index)}"


def metadata_key(job_id: str) -> str:
    return f"{job_prefix(job_id)}/{METADATA_FILE}"


def input_key(job_id: str) -> str:
    """A refinement job's input: the parent's sketch, copied so the job stands on its own."""
    return f"{job_prefix(job_id)}/{INPUT_FILE}"


def style_prefix(style_id: str) -> str:
    """A user style's files (its reference images) in the blob store."""
    return f"styles/{style_id}"


def style_reference_key(style_id: str, sha256: str) -> str:
    """One reference image, stored once by the SHA-256 of its normalised PNG."""
    return f"{style_prefix(style_id)}/references/{sha256}.png"
