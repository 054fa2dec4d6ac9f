"""The app's ASGI middleware: routing on the raw path (ids may hold "/") and observing requests."""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI

from service.api.deps import VERSION_SCOPE_KEY
from service.api.ids import RouteOnRawPath
from service.metrics import route_label


def install(app: FastAPI) -> None:
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
                if version is not None:
                    headers = list(message.get("headers", []))
                    headers.append((b"x-bundle-version", version.encode()))
                    message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_header)
        finally:
            if state is not None and hasattr(state, "metrics"):
                state.metrics.requests.labels(
                    route_label(scope), scope["method"], str(status)
                ).observe(time.perf_counter() - start)
