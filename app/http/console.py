"""`GET /docs` and the console at `/ui`: static pages that need no token and reach nothing but this service.

Swagger UI comes from the `swagger-ui-py` wheel (it ships swagger-ui-dist's files), so `/docs` renders
with no internet and runs no third-party script next to an admin's token. The console's files live in
app/ui/. Both pages carry a Content-Security-Policy that allows scripts, styles and requests from this
origin only: a token pasted into them can leave only towards this service.
"""

from __future__ import annotations

from pathlib import Path

import swagger_ui
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from app.errors import Problem, ProblemType

UI_DIR = Path(__file__).resolve().parent.parent / "ui"
_SWAGGER_DIR = Path(swagger_ui.__file__).resolve().parent / "static"
# Only what the page loads: the wheel also carries Swagger Editor and source maps.
_SWAGGER_FILES = {"swagger-ui-bundle.js", "swagger-ui.css"}

_COMMON = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self' data:; font-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
# Swagger UI's React components set style attributes in markup they render; nothing else is inline.
DOCS_CSP = _COMMON + "; style-src 'self' 'unsafe-inline'"
UI_CSP = _COMMON + "; style-src 'self'"


def _hardened(response: Response, csp: str) -> Response:
    response.headers["Content-Security-Policy"] = csp
    response.headers["X-Content-Type-Options"] = "nosniff"
    # A URL under /ui or /docs carries nothing secret, but neither page needs to tell others where it was.
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


async def docs(request: Request) -> Response:
    return _hardened(FileResponse(UI_DIR / "docs.html", media_type="text/html; charset=utf-8"), DOCS_CSP)


async def docs_asset(request: Request) -> Response:
    name = request.path_params["name"]
    if name == "docs.js":
        path = UI_DIR / "docs.js"
    elif name in _SWAGGER_FILES:
        path = _SWAGGER_DIR / name
    else:
        raise Problem(ProblemType.not_found, f"no route {request.url.path}")
    response = FileResponse(path)
    # The bundle only changes with the installed package version; an hour spares reloading 1.5 MB.
    response.headers["Cache-Control"] = "public, max-age=3600"
    return _hardened(response, DOCS_CSP)


class ConsoleFiles(StaticFiles):
    """app/ui/ under /ui/, each answer with the console's CSP; a missing file is a problem document."""

    def file_response(self, full_path, stat_result, scope: Scope, status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        # no-cache still lets the browser revalidate with the ETag: a redeploy shows at once.
        response.headers["Cache-Control"] = "no-cache"
        return _hardened(response, UI_CSP)

    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            return await super().get_response(path, scope)
        except Exception as error:
            status = getattr(error, "status_code", None)
            if status == 404:
                raise Problem(ProblemType.not_found, f"no file {scope['path']}") from None
            if status == 405:
                raise Problem(
                    ProblemType.method_not_allowed,
                    f"{scope['method']} is not allowed on {scope['path']}",
                    headers={"Allow": "GET, HEAD"},
                ) from None
            raise


async def console_root(request: Request) -> Response:
    # The same page as /ui/ (its URLs are absolute), so neither address needs a redirect.
    response = FileResponse(UI_DIR / "index.html", media_type="text/html; charset=utf-8")
    response.headers["Cache-Control"] = "no-cache"
    return _hardened(response, UI_CSP)


console_files = ConsoleFiles(directory=UI_DIR, html=True)
