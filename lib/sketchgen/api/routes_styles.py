"""``/v1/styles``: the styles a job can name, and their reference thumbnails."""

from __future__ import annotations

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from sketchgen.api.core import Routing, json_response
from sketchgen.errors import RequestError, UnknownStyleError
from sketchgen.schemas import Style

__all__ = ["StyleRoutes"]


class StyleRoutes:
    def __init__(self, routing: Routing) -> None:
        self.routing = routing

    def rules(self) -> list[Rule]:
        return [
            Rule("/v1/styles", endpoint=self.list_styles, methods=["GET"]),
            Rule("/v1/styles/<style_id>", endpoint=self.get_style, methods=["GET"]),
            Rule(
                "/v1/styles/<style_id>/references/<sha256>.png",
                endpoint=self.style_reference,
                methods=["GET"],
            ),
        ]

    def list_styles(self, request: Request) -> Response:
        self.routing.uid(request)
        styles = self.routing.service().styles.list_styles()
        return json_response(
            {
                "styles": [
                    {
                        "id": s.id,
                        "name": s.name,
                        "description": s.description,
                        "references": len(s.references),
                    }
                    for s in styles
                ]
            }
        )

    def get_style(self, request: Request, style_id: str) -> Response:
        self.routing.uid(request)
        style = self._style(style_id)
        return json_response(
            {
                "id": style.id,
                "name": style.name,
                "description": style.description,
                "visual_rules": list(style.visual_rules),
                "references": [
                    {"sha256": r.sha256, "tags": list(r.tags), "description": r.description}
                    for r in style.references
                ],
            }
        )

    def style_reference(self, request: Request, style_id: str, sha256: str) -> Response:
        # Thumbnails are the style's own published references, not user data: no auth, so a
        # plain <img> can show them.
        style = self._style(style_id)
        for reference in style.references:
            if reference.sha256 == sha256:
                data = self.routing.service().styles.reference_bytes(reference)
                return Response(
                    data,
                    mimetype=reference.mime_type,
                    headers={"Cache-Control": "public, max-age=86400, immutable"},
                )
        raise RequestError(404, "not_found", f"no reference {sha256!r} in style {style_id!r}")

    def _style(self, style_id: str) -> Style:
        # In a path an unknown style is a missing resource (404), not a bad field (422).
        try:
            return self.routing.service().styles.get_style(style_id)
        except UnknownStyleError as error:
            raise RequestError(404, "not_found", str(error), "style_id") from None
