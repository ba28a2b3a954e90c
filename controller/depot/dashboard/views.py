"""The web dashboard: static files (HTML, JavaScript modules, CSS) served by the controller itself,
no build step. ``/`` redirects to ``/ui/``; the page talks to the REST API with the token the user
pastes (kept in the browser's sessionStorage), and follows a running deployment through
``/api/v1/deployments/{id}/stream``.

None of this is in the OpenAPI document, and none of it needs a token: it is the same public code
for everyone, and every piece of data it shows comes from the API, which checks the token."""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from depot.errors import NotFound

STATIC = Path(__file__).with_name("static")
MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
               ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png",
               ".ico": "image/x-icon", ".json": "application/json"}
# Scripts, styles and data from this origin only: nothing inline, nothing from elsewhere, no framing.
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
                                "frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

router = APIRouter(include_in_schema=False, tags=["dashboard"])


def _assets() -> dict[str, Path]:
    """Every file under static/ by its path relative to it: the only files ever served."""
    return {p.relative_to(STATIC).as_posix(): p for p in STATIC.rglob("*") if p.is_file()}


ASSETS = _assets()


def _file(request: Request, path: Path) -> Response:
    """The file, revalidated on every load (ETag): a new controller version is picked up at once, an
    unchanged file costs a 304."""
    media = MEDIA_TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    images = path.suffix in (".svg", ".png", ".ico")   # (the favicon is asked for at every navigation)
    headers = {**SECURITY_HEADERS, "Cache-Control": "public, max-age=86400" if images else "no-cache"}
    response = FileResponse(path, media_type=media, headers=headers, stat_result=os.stat(path))
    etag = response.headers["etag"]
    if etag in [tag.strip() for tag in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers={**headers, "ETag": etag})
    return response


@router.get("/")
def root() -> Response:
    return RedirectResponse("/ui/", status_code=307)


@router.get("/ui")
def ui_without_slash() -> Response:
    return RedirectResponse("/ui/", status_code=307)


@router.get("/ui/")
def index(request: Request) -> Response:
    return _file(request, ASSETS["index.html"])


@router.get("/ui/{asset:path}")
def asset(request: Request, asset: str) -> Response:
    path = ASSETS.get(asset)
    if path is None:
        raise NotFound(f"no such file: /ui/{asset}")
    return _file(request, path)
