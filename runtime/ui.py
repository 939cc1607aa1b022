"""Serving a built single-page app (CVAT's web UI) from the API's origin, and annota's logo.

With ``ui_dir`` set, every path no API route answers is a file of that directory, or the app's
``index.html`` so the app's own router sees deep links (``/tasks/3/jobs/7``). ``/api/...`` paths
keep their JSON 404, and a missing file with an extension (``/assets/app.1a2b3c4d.js``) is a plain
404 rather than an HTML page a browser would try to run. File names carrying a content hash are
cached for a year; everything else, ``index.html`` first, is revalidated on every use.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import mimetypes
import re
from pathlib import Path, PurePosixPath

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from annota.core.errors import ConfigError, NotFound

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
INDEX = "index.html"

#: a name part of 8+ hex digits (webpack's ``[contenthash]``), or 8 base64url characters with a
#: digit and a letter (vite's ``name-BzX9a3cQ.js``), between separators
_HASHED = re.compile(
    r"(?:^|[.\-_])(?:[0-9a-f]{8,}|(?=[\w-]{0,7}\d)(?=[\w-]{0,7}[A-Za-z])[\w-]{8})\.", re.IGNORECASE
)
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".wasm": "application/wasm",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
    ".ico": "image/x-icon",
}
#: precompressed siblings, in order of preference
_ENCODINGS = (("br", ".br"), ("gzip", ".gz"))


def is_hashed(name: str) -> bool:
    return _HASHED.search(name) is not None


def content_type(name: str) -> str:
    suffix = PurePosixPath(name).suffix.lower()
    return _TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def accepted_encodings(header: str) -> set[str]:
    """The codings ``Accept-Encoding`` allows (``q=0`` refuses one)."""
    accepted: set[str] = set()
    for item in header.split(","):
        coding, _, params = item.strip().partition(";")
        quality = params.strip().removeprefix("q=") if params.strip().startswith("q=") else "1"
        try:
            allowed = float(quality) > 0
        except ValueError:
            allowed = False
        if coding and allowed:
            accepted.add(coding.strip().lower())
    return accepted


def check_ui_dir(ui_dir: str) -> Path:
    root = Path(ui_dir).expanduser().resolve()
    if not (root / INDEX).is_file():
        raise ConfigError(f"ui_dir {ui_dir!r} holds no {INDEX}: give the directory of a built web UI.")
    return root


class SinglePageApp:
    """The endpoint behind every path no other route answers."""

    def __init__(self, ui_dir: str) -> None:
        self.root = check_ui_dir(ui_dir)

    def _file(self, path: str) -> Path | None:
        relative = PurePosixPath(path.lstrip("/"))
        if any(part in ("..", "") or part.startswith(".") for part in relative.parts):
            return None
        candidate = (self.root / relative).resolve()
        if not candidate.is_relative_to(self.root) or not candidate.is_file():
            return None
        return candidate

    async def __call__(self, request: Request) -> Response:
        path = request.url.path
        if path == "/api" or path.startswith("/api/") or request.method not in ("GET", "HEAD"):
            raise NotFound("Not found.")
        found = self._file(path) if path != "/" else None
        if found is None:
            if PurePosixPath(path).suffix:
                raise NotFound(f"No file {path} in the web UI.")
            found = self.root / INDEX
        return self._send(request, found)

    def _send(self, request: Request, file: Path) -> Response:
        name = file.name
        headers = {
            "Cache-Control": IMMUTABLE if name != INDEX and is_hashed(name) else REVALIDATE,
            "Vary": "Accept-Encoding",
        }
        sent = file
        accepted = accepted_encodings(request.headers.get("accept-encoding", ""))
        for coding, suffix in _ENCODINGS:
            sibling = file.with_name(name + suffix)
            if coding in accepted and sibling.is_file():
                sent, headers["Content-Encoding"] = sibling, coding
                break
        stat = sent.stat()
        etag = '"' + hashlib.md5(f"{sent.name}-{stat.st_mtime_ns}-{stat.st_size}".encode()).hexdigest() + '"'
        headers["ETag"] = etag
        if etag in (tag.strip() for tag in request.headers.get("if-none-match", "").split(",")):
            return Response(status_code=304, headers=headers)
        return FileResponse(sent, headers=headers, media_type=content_type(name), stat_result=stat)


def logo_svg() -> bytes:
    return importlib.resources.files("annota.runtime").joinpath("static/logo.svg").read_bytes()


async def logo(request: Request) -> Response:
    """annota's logo, for the UI's login page (``logo_url`` of ``/api/server/about``)."""
    return Response(
        logo_svg(), media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"}
    )


LOGO_PATH = "/static/logo.svg"
