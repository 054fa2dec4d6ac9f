"""`create_app(settings)`: the FastAPI app. Everything is built in the lifespan, per worker."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI

from service import console, errors, middleware, recommend, status
from service.api import artists, ops, stations, tracks, users
from service.api.access import document_security
from service.api.deps import document_errors, document_limits, document_models
from service.auth import AccessRules, Gate
from service.bundle_holder import BundleHolder, LoadedBundle
from service.list_cache import ListCache
from service.metrics import Metrics
from service.response_cache import ResponseCache
from service.settings import Settings
from service.station_turns import StationTurns
from service.store_monitor import StoreMonitor

log = logging.getLogger("segue")

ROUTERS = (tracks.router, artists.router, users.router, stations.router, ops.router)


def create_app(settings: Settings) -> FastAPI:
    app = _App(
        title="segue",
        version="1",
        summary="Similar tracks, related artists and personal recommendations",
        lifespan=_lifespan,
    )
    app.state.settings = settings
    app.state.station_config = settings.station_config()
    app.state.gate = Gate.of(settings)  # reads the keys: AuthConfigError if they are bad
    if settings.auth == "off":
        log.warning("SEGUE_AUTH=off: no authentication, every caller may do anything")
    app.state.station_turns = StationTurns(wait_seconds=settings.station_busy_seconds)
    for router in ROUTERS:
        app.include_router(router)
    console.install(app)
    errors.install(app)
    middleware.install(app, max_body_bytes=settings.max_body_bytes)
    return app


class _App(FastAPI):
    """FastAPI, with the list limits of its settings (see `deps.Limit`) and the models of the
    bundle it serves (the `model` parameter's enum) in its OpenAPI."""

    _schema_version: str | None = None

    def openapi(self) -> dict[str, Any]:
        holder: BundleHolder | None = getattr(self.state, "holder", None)
        loaded = holder.current if holder is not None else None
        version = loaded.version if loaded is not None else None
        if self.openapi_schema is None or version != self._schema_version:
            self.openapi_schema = None
            schema = super().openapi()
            routes = [route for router in ROUTERS for route in router.routes]
            settings = self.state.settings
            document_limits(schema, routes=routes, settings=settings)
            document_errors(schema, routes=routes)
            document_security(
                schema,
                routes=routes,
                rules=AccessRules.of(settings),
                enabled=settings.auth == "jwt",
            )
            if loaded is not None:
                document_models(schema, models=recommend.sources(loaded, entity="tracks"))
            self._schema_version = version
            return schema
        return self.openapi_schema


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    metrics = Metrics(multiprocess_dir=settings.metrics_dir)
    holder = BundleHolder(
        settings.bundles,
        verify_checksums=settings.verify_checksums,
        candidates_per_source=settings.candidates_per_source,
        search_k=settings.search_k,
        signing_key=settings.signing_key(),
        on_ann_query=metrics.observe_ann,
    )
    stores = StoreMonitor(
        settings.store,
        options=settings.store_options(),
        retry_after_seconds=settings.store_retry_after_seconds,
        on_error=metrics.store_errors.inc,
        on_state=metrics.store_up.set,
    )
    app.state.metrics, app.state.holder, app.state.stores = metrics, holder, stores
    app.state.list_cache = ListCache(
        max_items=settings.list_cache_size, on_read=metrics.list_cache_read
    )
    app.state.response_cache = ResponseCache(
        max_bytes=int(settings.response_cache_mb * 2**20), on_read=metrics.response_cache_read
    )
    watchers = [
        asyncio.create_task(holder.watch(
            every=settings.swap_poll_seconds, on_swap=functools.partial(_serving, metrics),
            on_refused=metrics.bundle_refused.inc,
        )),
        asyncio.create_task(stores.watch(every=settings.store_check_seconds)),
    ]  # fmt: skip
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


def _serving(metrics: Metrics, loaded: LoadedBundle, previous: str | None) -> None:
    created = status.created_timestamp(loaded.bundle.typed_manifest)
    metrics.serving(version=loaded.version, previous=previous, created=created)
