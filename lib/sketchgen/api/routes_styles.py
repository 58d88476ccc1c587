"""``/v1/styles``: the built-in styles and the caller's own, their references and images.

Another user's style answers exactly as a missing one (404) on every route. Built-in styles
are read-only (403 ``read_only``). A reference is uploaded as ``multipart/form-data`` with
``image`` (PNG, JPEG or WebP), ``tags`` (comma-separated) and ``description``.
"""

from __future__ import annotations

from typing import Any

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from sketchgen.api.core import FORM_OVERHEAD, Routing, base_url, json_response, reads_body
from sketchgen.errors import ImageRejectedError, RequestError, UnknownStyleError
from sketchgen.schemas import Style
from sketchgen.services.styles import OwnedStyle, StyleService
from sketchgen.styles.owned import (
    MAX_DESCRIPTION_CHARS,
    ReferenceDoc,
    ReferencePatch,
    StyleDoc,
    StyleDraft,
    StylePatch,
    is_user_style_id,
    parse_tags,
)
from sketchgen.text import clean_text

__all__ = ["StyleRoutes"]

_PARSER_READ_BYTES = 64 * 1024  # werkzeug.formparser.MultiPartParser's buffer_size


class StyleRoutes:
    def __init__(self, routing: Routing) -> None:
        self.routing = routing

    def rules(self) -> list[Rule]:
        one = "/v1/styles/<style_id>"
        reference = f"{one}/references/<sha256>"
        return [
            Rule("/v1/styles", endpoint=self.list_styles, methods=["GET"]),
            Rule("/v1/styles", endpoint=self.create_style, methods=["POST"]),
            Rule(one, endpoint=self.get_style, methods=["GET"]),
            Rule(one, endpoint=self.update_style, methods=["PATCH"]),
            Rule(one, endpoint=self.delete_style, methods=["DELETE"]),
            Rule(f"{one}/references", endpoint=self.add_reference, methods=["POST"]),
            Rule(f"{reference}.png", endpoint=self.style_reference, methods=["GET"]),
            Rule(reference, endpoint=self.update_reference, methods=["PATCH"]),
            Rule(reference, endpoint=self.delete_reference, methods=["DELETE"]),
        ]

    def _catalog(self) -> StyleService:
        return self.routing.service().catalog

    # -- styles --------------------------------------------------------------------------

    def list_styles(self, request: Request) -> Response:
        uid = self.routing.uid(request)
        catalog = self._catalog()
        builtins = [
            {
                "id": s.id,
                "name": s.name,
                "description": s.description,
                "references": len(s.references),
                "owned": False,
            }
            for s in catalog.builtin_styles()
        ]
        own = [
            {
                **_style_summary(d),
                "references": len(catalog.store.list_references(d.style_id)),
                "owned": True,
            }
            for d in catalog.own_styles(uid)
        ]
        return json_response({"styles": builtins + own})

    @reads_body("json")
    def create_style(self, request: Request) -> Response:
        uid = self.routing.uid(request)
        draft = self.routing.body(request, StyleDraft)
        doc = self._catalog().create_style(uid, draft)
        return json_response(
            {"style_id": doc.style_id, **_style_summary(doc)},
            201,
            {"Location": f"/v1/styles/{doc.style_id}"},
        )

    def get_style(self, request: Request, style_id: str) -> Response:
        uid = self.routing.uid(request)
        if not is_user_style_id(style_id):
            style = self._builtin(style_id)
            return json_response(self._builtin_view(request, style))
        owned = self._catalog().owned(uid, style_id)
        return json_response(self._owned_view(request, owned))

    @reads_body("json")
    def update_style(self, request: Request, style_id: str) -> Response:
        uid = self.routing.uid(request)
        patch = self.routing.body(request, StylePatch)
        self._catalog().update_style(uid, style_id, patch)
        return json_response(self._owned_view(request, self._catalog().owned(uid, style_id)))

    def delete_style(self, request: Request, style_id: str) -> Response:
        uid = self.routing.uid(request)
        self._catalog().delete_style(uid, style_id)
        return Response(status=204)

    # -- references ----------------------------------------------------------------------

    @reads_body("upload")
    def add_reference(self, request: Request, style_id: str) -> Response:
        uid = self.routing.uid(request)
        catalog = self._catalog()
        catalog.owned(uid, style_id)  # 404 before reading a byte of someone else's upload
        data, tags, description = self._upload(request, catalog.limits.max_upload_bytes)
        reference, created = catalog.add_reference(
            uid, style_id, data, tags=tags, description=description
        )
        body = {"sha256": reference.sha256, **self._reference_view(request, style_id, reference)}
        return json_response(body, 201 if created else 200)

    @reads_body("json")
    def update_reference(self, request: Request, style_id: str, sha256: str) -> Response:
        uid = self.routing.uid(request)
        patch = self.routing.body(request, ReferencePatch)
        reference = self._catalog().update_reference(uid, style_id, sha256, patch)
        return json_response(self._reference_view(request, style_id, reference))

    def delete_reference(self, request: Request, style_id: str, sha256: str) -> Response:
        uid = self.routing.uid(request)
        self._catalog().delete_reference(uid, style_id, sha256)
        return Response(status=204)

    def style_reference(self, request: Request, style_id: str, sha256: str) -> Response:
        catalog = self._catalog()
        if is_user_style_id(style_id):
            # A user's references are theirs: the page fetches them with its token.
            uid: str | None = self.routing.uid(request)
            cache = "private, max-age=3600"
        else:
            # Built-in thumbnails are the package's published references, not user data: no
            # auth, so a plain <img> can show them.
            uid, cache = None, "public, max-age=86400, immutable"
            self._builtin(style_id)
        reference = catalog.reference_image(uid, style_id, sha256)
        return Response(
            catalog.reference_bytes(reference),
            mimetype=reference.mime_type,
            headers={"Cache-Control": cache},
        )

    # -- views ---------------------------------------------------------------------------

    def _builtin(self, style_id: str) -> Style:
        # In a path an unknown style is a missing resource (404), not a bad field (422).
        try:
            return self._catalog().builtins.get_style(style_id)
        except UnknownStyleError as error:
            raise RequestError(404, "not_found", str(error), "style_id") from None

    def _builtin_view(self, request: Request, style: Style) -> dict[str, Any]:
        banned = set(style.do_not_use)
        return {
            "id": style.id,
            "name": style.name,
            "description": style.description,
            "visual_rules": list(style.visual_rules),
            "owned": False,
            "references": [
                {
                    "sha256": r.sha256,
                    "tags": list(r.tags),
                    "description": r.description,
                    "thumbnail_url": self._thumbnail(request, style.id, r.sha256),
                    "do_not_use": r.sha256 in banned or r.path.rsplit("/", 1)[-1] in banned,
                }
                for r in style.references
            ],
        }

    def _owned_view(self, request: Request, owned: OwnedStyle) -> dict[str, Any]:
        from sketchgen.styles.owned import style_version

        return {
            **_style_summary(owned.doc),
            "owned": True,
            "version": style_version(owned.style),
            "references": [
                self._reference_view(request, owned.doc.style_id, r) for r in owned.references
            ],
        }

    def _reference_view(
        self, request: Request, style_id: str, reference: ReferenceDoc
    ) -> dict[str, Any]:
        return {
            "sha256": reference.sha256,
            "tags": list(reference.tags),
            "description": reference.description,
            "do_not_use": reference.do_not_use,
            "width": reference.width,
            "height": reference.height,
            "embedding_model": reference.embedding_model,
            "thumbnail_url": self._thumbnail(request, style_id, reference.sha256),
        }

    @staticmethod
    def _thumbnail(request: Request, style_id: str, sha256: str) -> str:
        return f"{base_url(request)}/v1/styles/{style_id}/references/{sha256}.png"

    # -- the upload ----------------------------------------------------------------------

    @staticmethod
    def _upload(request: Request, max_image_bytes: int) -> tuple[bytes, tuple[str, ...], str]:
        if request.mimetype != "multipart/form-data":
            raise RequestError(
                415,
                "unsupported_media_type",
                "send the image as multipart/form-data (fields image, tags, description)",
                "Content-Type",
            )
        # The body is read through its route's limit (image + FORM_OVERHEAD, refused on
        # Content-Length or counted while it streams); the fields are bounded in memory.
        # werkzeug (3.1) holds this limit against its parser's buffer, which is a whole read
        # (64 KiB) plus a boundary's tail while a file streams through it: a limit of the
        # fields' size alone refused every image over about 64 KiB.
        request.max_form_memory_size = FORM_OVERHEAD + _PARSER_READ_BYTES
        try:
            upload = request.files.get("image")
            form = request.form
        except (RequestError, RequestEntityTooLarge) as error:
            if isinstance(error, RequestError) and error.http_status != 413:
                raise
            raise ImageRejectedError(
                413, "image_too_large", f"the image is over {max_image_bytes} bytes", "image"
            ) from None
        if upload is None:
            raise RequestError(422, "invalid_argument", "the form has no image field", "image")
        data = upload.stream.read(max_image_bytes + 1)
        description = clean_text(
            form.get("description", ""),
            field="description",
            max_chars=MAX_DESCRIPTION_CHARS,
            allow_empty=True,
        )
        return data, parse_tags(form.get("tags")), description


def _style_summary(doc: StyleDoc) -> dict[str, Any]:
    return {
        "id": doc.style_id,
        "name": doc.name,
        "description": doc.description,
        "rules": list(doc.rules),
        "negative_rules": list(doc.negative_rules),
        "created_at": doc.created_at.isoformat(),
        "updated_at": doc.updated_at.isoformat(),
    }
