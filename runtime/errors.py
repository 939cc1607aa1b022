"""The one place where exceptions become HTTP responses."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from annota.core import metrics
from annota.core.errors import AnnotaError, TooManyRequests, ValidationError
from annota.core.queue import is_connection_loss
from annota.runtime.web import json_response

logger = logging.getLogger(__name__)


def error_response(exc: AnnotaError) -> Response:
    body = (
        exc.detail
        if isinstance(exc, ValidationError) and not isinstance(exc.detail, str)
        else {"detail": exc.detail}
    )
    headers = {"WWW-Authenticate": 'Token realm="api"'} if exc.status_code == 401 else None
    if isinstance(exc, TooManyRequests):
        headers = {"Retry-After": str(exc.retry_after)}
    return json_response(body, status_code=exc.status_code, headers=headers)


async def annota_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AnnotaError)
    if exc.status_code >= 500:
        logger.error("%s %s: %s", request.method, request.url.path, exc.detail)
        metrics.count_storage_error(exc, request.app.state.annota.settings.storage, "http")
    return error_response(exc)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = {404: "Not found.", 405: f'Method "{request.method}" not allowed.'}.get(
        exc.status_code, exc.detail
    )
    return json_response({"detail": detail}, status_code=exc.status_code, headers=exc.headers)


async def server_error(request: Request, exc: Exception) -> Response:
    if is_connection_loss(exc):
        # a request cut off by a dropped connection (the database restarted, or ended it): not a bug
        logger.warning("%s %s: the database connection was lost: %s", request.method, request.url.path, exc)
        return json_response(
            {"detail": "The database connection was lost; please try again."},
            status_code=503,
            headers={"Retry-After": "1"},
        )
    logger.exception("unhandled error in %s %s", request.method, request.url.path)
    return json_response({"detail": "A server error occurred."}, status_code=500)


EXCEPTION_HANDLERS = {AnnotaError: annota_error, HTTPException: http_error, Exception: server_error}
