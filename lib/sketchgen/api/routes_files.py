"""A job's files, for stores that cannot sign URLs: one file, or all of them as a zip (with
``?formats=svg,psd`` or ``?formats=all``, each sketch's draw-over exports too: issue 27)."""

from __future__ import annotations

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from sketchgen.api.core import Routing, checked_job_id
from sketchgen.exports import EXPORT_FORMATS, ExportFormat, checked_format
from sketchgen.layout import METADATA_FILE, metadata_key, sketch_file, sketch_key

__all__ = ["FileRoutes"]


class FileRoutes:
    def __init__(self, routing: Routing) -> None:
        self.routing = routing

    def rules(self) -> list[Rule]:
        return [
            Rule("/v1/jobs/<job_id>/files/<name>", endpoint=self.get_file, methods=["GET"]),
            Rule("/v1/jobs/<job_id>/archive.zip", endpoint=self.archive, methods=["GET"]),
        ]

    def get_file(self, request: Request, job_id: str, name: str) -> Response:
        uid = self.routing.uid(request)
        data = self.routing.service().submission.read_blob(uid, checked_job_id(job_id), name)
        mimetype = "application/json" if name.endswith(".json") else "image/png"
        return Response(data, mimetype=mimetype, headers={"Cache-Control": "private, max-age=300"})

    def archive(self, request: Request, job_id: str) -> Response:
        import io
        import zipfile

        uid = self.routing.uid(request)
        service = self.routing.service()
        job = service.submission.get_job(uid, checked_job_id(job_id))
        formats = _formats(request.args.get("formats", ""))
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:  # PNGs don't deflate
            for index, state in sorted(job.sketches.items(), key=lambda kv: int(kv[0])):
                if state.status == "ok":
                    archive.writestr(
                        f"{job_id}/{sketch_file(int(index))}",
                        service.blobs.get(sketch_key(job_id, int(index))),
                    )
                    for fmt in formats:
                        data, _, name = service.studio.export(uid, job_id, int(index), fmt)
                        archive.writestr(f"{job_id}/{name.removeprefix(f'{job_id}_')}", data)
            if job.metadata_path:
                archive.writestr(
                    f"{job_id}/{METADATA_FILE}", service.blobs.get(metadata_key(job_id))
                )
        return Response(
            buffer.getvalue(),
            mimetype="application/zip",
            headers={"Content-Disposition": f'attachment; filename="{job_id}.zip"'},
        )


def _formats(value: str) -> list[ExportFormat]:
    """``svg,psd`` or ``all``; empty: the sketches as they are."""
    if value.strip() == "all":
        return list(EXPORT_FORMATS)
    chosen = [checked_format(part.strip()) for part in value.split(",") if part.strip()]
    return list(dict.fromkeys(chosen))
