"""What can go wrong in a request, as the status, `{"detail": ...}` body and headers a client gets.

The logic layer raises these; `install` gives the app one handler for all of them (and the
catch-all 500 that logs), so a router never builds an error response.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

log = logging.getLogger("segue")

Detail = str | list[dict[str, Any]]


class ServiceError(Exception):
    """An error with the HTTP answer it gets: `status_code`, `detail` and a Retry-After when
    the client may try again (`retry_after` seconds)."""

    status_code = 500
    retry_after: int | None = None

    def __init__(self, detail: Detail) -> None:
        super().__init__(detail)
        self.detail = detail

    @property
    def headers(self) -> dict[str, str]:
        return _headers(self.retry_after)


class NotFound(ServiceError):
    """An id the bundle (or the store) does not have: 404 naming it."""

    status_code = 404

    def __init__(self, kind: str, external_id: str) -> None:
        super().__init__(f"{kind} {external_id!r} not found")


class ModelUnavailable(ServiceError):
    """The bundle lacks the model (or its data) the request needs, e.g. a format-1 bundle has
    no users: 404."""

    status_code = 404


class BadParameter(ServiceError):
    """A parameter that only the bundle or the store can tell is wrong (an unknown model, a
    track the station never played): 422, in the shape of FastAPI's own validation errors."""

    status_code = 422

    def __init__(
        self, name: str, message: str, *, where: str = "query", kind: str = "value_error"
    ) -> None:
        super().__init__([{"loc": [where, name], "msg": message, "type": kind}])


class TooLarge(ServiceError):
    """A request body over SEGUE_MAX_BODY_BYTES: 413."""

    status_code = 413

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body over {limit} bytes (SEGUE_MAX_BODY_BYTES)")


class ClientGone(ServiceError):
    """The client disconnected while its request waited: its work is dropped (499, the status
    nginx logs for it; no one reads the answer)."""

    status_code = 499


class Busy(ServiceError):
    """Too many concurrent updates of one thing (a station): 409, retry."""

    status_code = 409
    retry_after = 1


class NoBundle(ServiceError):
    """No bundle could be loaded (yet): 503, retry."""

    status_code = 503
    retry_after = 1

    def __init__(self, reason: str) -> None:
        super().__init__(f"not ready: {reason}")


class NoStore(ServiceError):
    """The store is down, or did not answer this request: 503, retry after `retry_after`."""

    status_code = 503

    def __init__(self, reason: str, *, retry_after: int) -> None:
        super().__init__(f"store unavailable, try again later: {reason}")
        self.retry_after = retry_after


REALM = "segue"


class Unauthenticated(ServiceError):
    """No usable credentials: 401 with the `WWW-Authenticate` challenge of RFC 6750, which names
    the reason (`error="invalid_token"`) when a token was sent, and only the realm when none
    was. The description never quotes the token."""

    status_code = 401

    def __init__(self, description: str, *, token_sent: bool) -> None:
        super().__init__(description)
        self.token_sent = token_sent

    @property
    def headers(self) -> dict[str, str]:
        if not self.token_sent:
            return {"WWW-Authenticate": f'Bearer realm="{REALM}"'}
        quoted = str(self.detail).replace("\\", "").replace('"', "'")
        return {
            "WWW-Authenticate": f'Bearer realm="{REALM}", error="invalid_token", '
            f'error_description="{quoted}"'
        }


class InsufficientScope(ServiceError):
    """A valid token without the scope a route needs: 403 naming the scope (RFC 6750)."""

    status_code = 403

    def __init__(self, scope: str) -> None:
        super().__init__(f"this needs the scope {scope!r}")
        self.scope = scope

    @property
    def headers(self) -> dict[str, str]:
        return {
            "WWW-Authenticate": f'Bearer realm="{REALM}", error="insufficient_scope", '
            f'scope="{self.scope}"'
        }


class Forbidden(ServiceError):
    """A valid token acting for someone else (another user's recommendations, a station for
    another user): 403."""

    status_code = 403


class TooManyRequests(ServiceError):
    """The caller's rate limit: 429, retry after `retry_after` seconds."""

    status_code = 429

    def __init__(self, *, retry_after: int) -> None:
        super().__init__(f"rate limit exceeded, try again in {retry_after} s")
        self.retry_after = retry_after


def install(app: FastAPI) -> None:
    """The handler of every ServiceError, of FastAPI's validation errors, and the catch-all 500."""
    app.add_exception_handler(ServiceError, _answer)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(Exception, _internal)


# an input longer than this (as JSON) is not echoed in a 422: a client sent it, a client has it
ECHO_MAX = 200


def validation_detail(errors: Any) -> list[dict[str, Any]]:
    """FastAPI's validation errors as JSON can carry them: `type`, `loc`, `msg`, and the
    `input` and `ctx` only where they are small and plain JSON (FastAPI's own handler echoes
    every input, a 20 MB one or a NaN it then cannot render)."""
    out = []
    for e in errors:
        item: dict[str, Any] = {
            "type": str(e.get("type", "value_error")),
            "loc": [p if isinstance(p, int) else str(p) for p in e.get("loc", ())],
            "msg": _clip(str(e.get("msg", ""))),
        }
        if "input" in e and _small(e["input"]):
            item["input"] = e["input"]
        ctx = {k: v if _small(v) else _clip(str(v)) for k, v in (e.get("ctx") or {}).items()}
        if ctx:
            item["ctx"] = ctx
        out.append(item)
    return out


def _small(value: Any) -> bool:
    """Plain JSON (no NaN or Infinity anywhere in it) of at most ECHO_MAX characters."""
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return len(text) <= ECHO_MAX


def _clip(text: str) -> str:
    return text if len(text) <= ECHO_MAX else text[:ECHO_MAX] + "..."


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return _response(validation_detail(exc.errors()), status_code=422, headers={})


async def _answer(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    return _response(exc.detail, status_code=exc.status_code, headers=exc.headers)


async def _internal(request: Request, exc: Exception) -> JSONResponse:
    log.exception("error in %s %s", request.method, request.url.path)
    return _response("internal error", status_code=500, headers={})


def _response(detail: Detail, *, status_code: int, headers: dict[str, str]) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status_code, headers=headers or None)


def _headers(retry_after: int | None) -> dict[str, str]:
    return {} if retry_after is None else {"Retry-After": str(retry_after)}
