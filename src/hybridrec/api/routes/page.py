"""GET /: a web page to try the service in a browser; plain static files shipped in the package (no
build step, nothing fetched from elsewhere), calling the API from the same origin."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
# the page loads its own files and calls its own origin, nothing else
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)

router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> FileResponse:
    return FileResponse(
        STATIC_DIR / "index.html",
        headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Cache-Control": "no-cache"},
    )


def static_files() -> StaticFiles:
    """The page's script and style sheet, served under ``/static``."""
    return StaticFiles(directory=STATIC_DIR)
