"""Errors as ``application/problem+json`` (RFC 9457): one place maps every failure to a status."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from supportdesk import errors

__all__ = ["ApiProblem", "install_problem_handlers", "problem_response"]

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}

# Which status each supportdesk error means over HTTP (first match wins: subclasses first).
_STATUS_BY_ERROR: tuple[tuple[type[Exception], int], ...] = (
    (errors.InvalidRunIdError, 400),
    (errors.InvalidQueryError, 422),
    (errors.CustomerNotFoundError, 422),
    (errors.IdempotencyConflictError, 409),
    (errors.RunNotFoundError, 404),
    (errors.ApprovalError, 409),
    (errors.RunBusyError, 409),
    (errors.ApiKeyError, 401),
    (errors.StoreBusyError, 503),
)


class ApiProblem(Exception):
    """Raise inside a route to answer with a problem document."""

    def __init__(self, status: int, detail: str, *, headers: dict[str, str] | None = None, title: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}
        self.title = title or _TITLES.get(status, "Error")


def problem_response(
    status: int,
    detail: str,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    title: str | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    """A problem+json response."""
    body: dict[str, Any] = {"type": "about:blank", "title": title or _TITLES.get(status, "Error"), "status": status,
                            "detail": detail}
    if instance:
        body["instance"] = instance
    body.update(extra or {})
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _validation_detail(exc: RequestValidationError) -> tuple[int, str, list[dict[str, Any]]]:
    items = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        items.append({"loc": loc, "type": err.get("type"), "msg": str(err.get("msg", ""))[:300]})
    first = exc.errors()[0] if exc.errors() else {}
    kind, loc = first.get("type"), tuple(first.get("loc", ()))
    if kind == "json_invalid":
        return 400, f"the request body is not valid JSON ({first.get('ctx', {}).get('error', 'parse error')})", items
    if kind == "missing" and loc == ("body",):
        return 400, "the request body is empty; send a JSON object", items
    if kind in ("model_attributes_type", "dict_type") and loc[:1] == ("body",) and len(loc) == 1:
        return 422, "the request body must be a JSON object", items
    message = "; ".join(f"{i['loc']}: {i['msg']}" for i in items[:5])
    return 422, f"invalid request: {message}", items


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error (ours, FastAPI's validation, Starlette's HTTP, unexpected) as problem+json."""

    @app.exception_handler(ApiProblem)
    async def _api_problem(request: Request, exc: ApiProblem) -> JSONResponse:
        return problem_response(exc.status, exc.detail, instance=request.url.path, headers=exc.headers, title=exc.title)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, detail, items = _validation_detail(exc)
        return problem_response(status, detail, instance=request.url.path, extra={"errors": items})

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "Error")
        return problem_response(exc.status_code, detail, instance=request.url.path, headers=getattr(exc, "headers", None))

    @app.exception_handler(errors.SupportdeskError)
    async def _ours(request: Request, exc: errors.SupportdeskError) -> JSONResponse:
        status = next((code for cls, code in _STATUS_BY_ERROR if isinstance(exc, cls)), 500)
        headers = {"Retry-After": "1"} if status in (503,) or isinstance(exc, errors.RunBusyError) else None
        if status >= 500:
            logger.error("%s %s: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
        return problem_response(status, str(exc), instance=request.url.path, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("%s %s failed", request.method, request.url.path)
        return problem_response(500, "internal error; the server log has the details", instance=request.url.path)
