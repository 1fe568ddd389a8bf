"""One table from domain errors to HTTP status, and RFC 9457 problem details for every error."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException

from domain.errors import (
    Conflict,
    DomainError,
    InvalidRequest,
    NotAcceptable,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)

log = logging.getLogger(__name__)

STATUS_OF: dict[type[DomainError], int] = {
    InvalidRequest: 400,
    NotFound: 404,
    NotAcceptable: 406,
    Conflict: 409,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
}


def problem(status: int, detail: str) -> Response[dict[str, object]]:
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status, "detail": detail}
    return Response(body, status_code=status, media_type="application/problem+json")


def domain_error(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, object]]:
    status = next((code for cls, code in STATUS_OF.items() if isinstance(exc, cls)), 400)
    return problem(status, str(exc))


def http_error(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, object]]:
    assert isinstance(exc, HTTPException)
    detail = exc.detail
    if exc.status_code == 413:
        detail = (
            "the request body is larger than TESSERA_MAX_REQUEST_BYTES allows; "
            "send fewer instances per request"
        )
    return problem(exc.status_code, detail)


def unexpected_error(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, object]]:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, "the server failed to handle this request; the error has been logged")


EXCEPTION_HANDLERS = {DomainError: domain_error, HTTPException: http_error, Exception: unexpected_error}
