"""Exports of a library job folder (``<output_dir>/<job_id>/sketch_<i>.png``), written beside
its sketches: what ``GenerationResult.export`` and ``sketchgen export`` do."""

from __future__ import annotations

import json
from pathlib import Path

from sketchgen.errors import InputError
from sketchgen.exports import ExportFormat, export_name, export_sketch
from sketchgen.layout import METADATA_FILE, sketch_file

__all__ = ["export_file", "export_folder", "finished_indices"]


def export_file(folder: Path, index: int, fmt: ExportFormat) -> Path:
    """Export sketch ``index`` of the job in ``folder``; returns the file written."""
    source = folder / sketch_file(index)
    if not source.is_file():
        raise InputError(f"{folder} has no sketch {index}", field="index")
    target = folder / export_name(index, fmt)
    data = export_sketch(source.read_bytes(), fmt)
    partial = target.with_name(target.name + ".partial")
    partial.write_bytes(data)
    partial.replace(target)  # never a half-written export where a finished one was
    return target


def finished_indices(folder: Path) -> list[int]:
    """The sketches the job's ``metadata.json`` says were made (their files are there)."""
    meta_path = folder / METADATA_FILE
    if not folder.is_dir() or not meta_path.is_file():
        raise InputError(f"{folder} is not a job folder (no {METADATA_FILE})", field="job_folder")
    try:
        sketches = json.loads(meta_path.read_text())["sketches"]
        return sorted(
            int(s["index"]) for s in sketches if s.get("file") and s.get("status") == "ok"
        )
    except (ValueError, KeyError, TypeError):
        raise InputError(f"{meta_path} is not a job's metadata", field="job_folder") from None


def export_folder(folder: Path, fmt: ExportFormat, indices: list[int] | None = None) -> list[Path]:
    chosen = finished_indices(folder) if indices is None else indices
    return [export_file(folder, index, fmt) for index in chosen]
