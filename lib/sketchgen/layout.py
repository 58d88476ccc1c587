"""The output layout, in one place: a job's files and where they are kept.

A job's files are ``<prefix>/{sketch_<i>.png, metadata.json}`` in a blob store, plus a
refinement's ``input.png``. The service's prefix is ``jobs/<job_id>`` in its bucket; the
library's store is its output folder, and its prefix the job id alone (``root=LIBRARY``), so
``<output_dir>/<job_id>/sketch_0.png``. Both, and the HTTP API that links to them, take the
keys from here.
"""

from __future__ import annotations

__all__ = [
    "INPUT_FILE",
    "LIBRARY",
    "METADATA_FILE",
    "SERVICE",
    "THUMBNAIL_PX",
    "export_key",
    "input_key",
    "job_prefix",
    "metadata_key",
    "sketch_file",
    "sketch_key",
    "style_prefix",
    "style_reference_key",
    "thumbnail_key",
]

METADATA_FILE = "metadata.json"
INPUT_FILE = "input.png"

SERVICE = "jobs"  # the service's bucket: jobs/<job_id>/...
LIBRARY = ""  # the library's output folder: <job_id>/...


def sketch_file(index: int) -> str:
    return f"sketch_{index}.png"


def job_prefix(job_id: str, *, root: str = SERVICE) -> str:
    return f"{root}/{job_id}" if root else job_id


def sketch_key(job_id: str, index: int, *, root: str = SERVICE) -> str:
    return f"{job_prefix(job_id, root=root)}/{sketch_file(index)}"


def metadata_key(job_id: str, *, root: str = SERVICE) -> str:
    return f"{job_prefix(job_id, root=root)}/{METADATA_FILE}"


THUMBNAIL_PX = 256  # the longest side of a history thumbnail


def thumbnail_key(job_id: str, index: int) -> str:
    """A sketch's thumbnail for the history view, made on its first request (issue 27)."""
    return f"{job_prefix(job_id)}/thumbnails/{sketch_file(index)}"


def export_key(job_id: str, name: str) -> str:
    """A sketch's export (``sketchgen.exports.export_name``), kept once made."""
    return f"{job_prefix(job_id)}/exports/{name}"


def input_key(job_id: str) -> str:
    """A refinement job's input: the parent's sketch, copied so the job stands on its own."""
    return f"{job_prefix(job_id)}/{INPUT_FILE}"


def style_prefix(style_id: str) -> str:
    """A user style's files (its reference images) in the blob store."""
    return f"styles/{style_id}"


def style_reference_key(style_id: str, sha256: str) -> str:
    """One reference image, stored once by the SHA-256 of its normalised PNG."""
    return f"{style_prefix(style_id)}/references/{sha256}.png"
