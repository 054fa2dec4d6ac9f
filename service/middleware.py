"""The app's ASGI middleware: routing on the raw path (ids may hold "/"), bounding and checking
request bodies, and observing requests."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import orjson
from fastapi import FastAPI
from starlette.routing import Route

from service.api.deps import VERSION_SCOPE_KEY
from service.api.ids import RouteOnRawPath
from service.errors import TooLarge
from service.metrics import route_label


def install(app: FastAPI, *, max_body_bytes: int) -> None:
    app.add_middleware(BodyGuard, max_bytes=max_body_bytes)
    app.add_middleware(RouteOnRawPath)  # ids may hold "/": route on the encoded path
    app.add_middleware(ObserveMiddleware)  # outermost: it times and labels the whole request


class ObserveMiddleware:
    """Adds X-Bundle-Version to every response and times every request by route (pure ASGI)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        state = scope["app"].state if "app" in scope else None

        async def send_with_header(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                version = scope.get(VERSION_SCOPE_KEY)
                if version is None and state is not None:
                    current = state.holder.current
                    version = current.version if current is not None else None
                headers = list(message.get("headers", []))
                if version is not None:
                    headers.append((b"x-bundle-version", version.encode()))
                if status == 405 and "app" in scope:
                    headers = [(k, v) for k, v in headers if k.lower() != b"allow"]
                    headers.append((b"allow", allowed_methods(scope).encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_header)
        finally:
            if state is not None and hasattr(state, "metrics"):
                state.metrics.requests.labels(
                    route_label(scope), scope["method"], str(status)
                ).observe(time.perf_counter() - start)


def allowed_methods(scope: dict[str, Any]) -> str:
    """Every method of every route of the path (Starlette's 405 names only the first route's:
    `Allow: GET` on /v1/stations/{id}, which DELETE has too)."""
    methods: set[str] = set()
    for route in _routes(scope["app"].routes):
        if route.methods and route.path_regex.match(scope["path"]):
            methods |= route.methods
    return ", ".join(sorted(methods))


def _routes(routes: Any) -> Iterator[Route]:
    """The app's routes, through the routers it includes (FastAPI keeps those as routers)."""
    for route in routes:
        if isinstance(route, Route):
            yield route
        elif (router := getattr(route, "original_router", None)) is not None:
            yield from _routes(router.routes)


class BodyGuard:
    """Bounds and checks a request body before the app sees it (pure ASGI): over `max_bytes`
    (by its Content-Length or as it streams in) a 413; a JSON body that is not JSON (NaN or
    Infinity, which Python's parser accepts and JSON has not; bytes that are not UTF-8) a 422
    in the shape of FastAPI's own. The body read is passed on to the app unchanged."""

    def __init__(self, app: Any, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = dict(scope.get("headers") or ()) if scope["type"] == "http" else {}
        if b"content-length" not in headers and b"transfer-encoding" not in headers:
            await self.app(scope, receive, send)  # no body (every GET): nothing to read
            return
        try:
            if int(headers.get(b"content-length", b"0")) > self.max_bytes:
                raise TooLarge(self.max_bytes)
        except ValueError:
            pass  # a bad Content-Length: the server's parser answers it
        except TooLarge as e:
            await _send(send, e.status_code, e.detail)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _send(send, 413, TooLarge(self.max_bytes).detail)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body and scope["method"] in ("POST", "PUT", "PATCH") and _is_json(headers):
            try:
                orjson.loads(body)
            except orjson.JSONDecodeError as e:
                await _send(send, 422, [{
                    "type": "json_invalid", "loc": ["body", e.pos],
                    "msg": "JSON decode error", "ctx": {"error": _first_line(str(e))},
                }])  # fmt: skip
                return
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return dict(await receive())

        await self.app(scope, replay, send)


def _is_json(headers: dict[bytes, bytes]) -> bool:
    """The body is one FastAPI parses as JSON: no content type, or application/json or
    application/*+json."""
    kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
    return (
        not kind
        or kind == b"application/json"
        or (kind.startswith(b"application/") and kind.endswith(b"+json"))
    )


def _first_line(text: str) -> str:
    return text.splitlines()[0][:200] if text else "invalid JSON"


async def _send(send: Any, status: int, detail: Any) -> None:
    body = orjson.dumps({"detail": detail})
    await send({
        "type": "http.response.start", "status": status,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": body})
