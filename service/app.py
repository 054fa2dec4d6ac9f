"""`create_app(settings)`: the FastAPI app. Everything is built in the lifespan, per worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from service.api import artists, ops, stations, tracks, users
from service.api.deps import VERSION_SCOPE_KEY, NotFound
from service.api.ids import RouteOnRawPath
from service.bundles import BundleHolder, NoBundle
from service.metrics import Metrics, route_label
from service.recommend import Unavailable
from service.settings import Settings
from service.stations import StationBusy, StationNotFound
from service.store.base import StoreUnavailable
from service.stores import StoreMonitor

log = logging.getLogger("segue")


def create_app(settings: Settings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        metrics = Metrics(multiprocess_dir=settings.metrics_dir)
        holder = BundleHolder(
            settings.bundles,
            verify_checksums=settings.verify_checksums,
            candidates_per_source=settings.candidates_per_source,
            search_k=settings.search_k,
        )
        stores = StoreMonitor(settings.store, options=settings.store_options())
        app.state.metrics, app.state.holder, app.state.stores = metrics, holder, stores
        watchers = [
            asyncio.create_task(_watch(holder, metrics, settings.swap_poll_seconds)),
            asyncio.create_task(_watch_store(stores, settings.store_check_seconds)),
        ]
        try:
            yield
        finally:
            for watcher in watchers:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            await asyncio.to_thread(stores.close)
            holder.close()
            metrics.worker_exit()

    app = FastAPI(
        title="segue",
        version="1",
        summary="Similar tracks, related artists and personal recommendations",
        lifespan=lifespan,
    )
    app.include_router(tracks.router(settings))
    app.include_router(artists.router(settings))
    app.include_router(users.router(settings))
    app.include_router(stations.router(settings))
    app.include_router(ops.router())

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(StationNotFound)
    async def station_not_found(request: Request, exc: StationNotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(StationBusy)
    async def station_busy(request: Request, exc: StationBusy) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409, headers={"Retry-After": "1"})

    @app.exception_handler(NoBundle)
    async def no_bundle(request: Request, exc: NoBundle) -> JSONResponse:
        return JSONResponse(
            {"detail": f"not ready: {exc}"}, status_code=503, headers={"Retry-After": "1"}
        )

    @app.exception_handler(StoreUnavailable)
    async def store_unavailable(request: Request, exc: StoreUnavailable) -> JSONResponse:
        request.app.state.stores.failed(exc)
        request.app.state.metrics.store_errors.inc()
        return JSONResponse(
            {"detail": f"store unavailable, try again later: {exc}"},
            status_code=503,
            headers={"Retry-After": str(settings.store_retry_after_seconds)},
        )

    @app.exception_handler(Unavailable)
    async def unavailable(request: Request, exc: Unavailable) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("error in %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal error"}, status_code=500)

    app.add_middleware(RouteOnRawPath)  # ids may hold "/": route on the encoded path
    app.add_middleware(ObserveMiddleware)
    return app


async def _watch(holder: BundleHolder, metrics: Metrics, every: float) -> None:
    """Loads the bundle, then follows `current`: hot swap without a restart."""
    while True:
        previous = holder.current.version if holder.current else None
        refused = holder.last_error
        try:
            swapped = await asyncio.to_thread(holder.refresh)
        except Exception:  # never let the watcher die: log and try again later
            log.exception("bundle refresh failed")
            swapped = False
        if swapped and holder.current is not None:
            for ann in holder.current.bundle.indexes.values():
                ann.observer = metrics.observe_ann
            metrics.serving(version=holder.current.version, previous=previous)
        if holder.last_error and holder.last_error != refused:
            metrics.bundle_refused.inc()
        await asyncio.sleep(every)


async def _watch_store(stores: StoreMonitor, every: float) -> None:
    """Pings the store: a store that was down is used again once it answers."""
    while True:
        try:
            await asyncio.to_thread(stores.check)
        except Exception:  # never let the watcher die
            log.exception("store check failed")
        await asyncio.sleep(every)


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


def app_from_env() -> FastAPI:
    """The uvicorn factory of `segue serve`: settings from SEGUE_* variables."""
    return create_app(Settings())
