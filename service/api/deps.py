"""Dependencies shared by the routers."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse

from indexes.bundle import Bundle
from service.api import schemas
from service.bundles import BundleHolder, LoadedBundle
from service.metrics import Metrics
from service.stores import StoreMonitor

VERSION_SCOPE_KEY = "segue.bundle_version"


async def loaded_bundle(request: Request) -> AsyncIterator[LoadedBundle]:
    """The bundle this request uses, held open until the request is done.

    async, so that FastAPI runs it on the event loop instead of a thread hop per request."""
    holder: BundleHolder = request.app.state.holder
    with holder.use() as loaded:
        request.scope[VERSION_SCOPE_KEY] = loaded.version
        yield loaded


def stores(request: Request) -> StoreMonitor:
    monitor: StoreMonitor = request.app.state.stores
    return monitor


def metrics(request: Request) -> Metrics:
    m: Metrics = request.app.state.metrics
    return m


# what a route asks for, once for every router (FastAPI reads these Annotated dependencies)
Loaded = Annotated[LoadedBundle, Depends(loaded_bundle)]
Stores = Annotated[StoreMonitor, Depends(stores)]
RequestMetrics = Annotated[Metrics, Depends(metrics)]


class NotFound(Exception):
    def __init__(self, kind: str, external_id: str) -> None:
        super().__init__(f"{kind} {external_id!r} not found")


def track_row(bundle: Bundle, track_id: str) -> int:
    row = bundle.tracks.row_of(track_id)
    if row is None:
        raise NotFound("track", track_id)
    return row


def artist_row(bundle: Bundle, artist_id: str) -> int:
    row = bundle.artists.row_of(artist_id)
    if row is None:
        raise NotFound("artist", artist_id)
    return row


def track_json(bundle: Bundle, row: int, **extra: Any) -> dict[str, Any]:
    """One track as the JSON object of `schemas.Track` (plus `extra` fields, e.g. score).

    List endpoints build these as plain dicts and return them with `body()`: the values come
    from the bundle, so validating dozens of pydantic models per request (and FastAPI validating
    the response model once more) would cost more than the lookup. The schemas stay the OpenAPI
    contract, and the API tests validate these bodies against them."""
    t = bundle.tracks
    assert t.artist is not None
    a = int(t.artist[row])
    return {
        "id": t.id_of(row),
        "name": t.names[row],
        "artist": {"id": bundle.artists.id_of(a), "name": bundle.artists.names[a]},
        "listeners": int(t.listeners[row]),
        **extra,
    }


def artist_json(bundle: Bundle, row: int, **extra: Any) -> dict[str, Any]:
    """One artist as the JSON object of `schemas.Artist` (plus `extra`); see `track_json`."""
    a = bundle.artists
    return {"id": a.id_of(row), "name": a.names[row], "listeners": int(a.listeners[row]), **extra}


def score(value: float) -> float:
    """A score as JSON can carry it (a non-finite float would fail the encoder: 0.0)."""
    v = float(value)
    return v if math.isfinite(v) else 0.0


def body(content: dict[str, Any]) -> JSONResponse:
    """A 200 JSON response from plain data (the route's response_model documents it)."""
    return JSONResponse(content)


def track_out(bundle: Bundle, row: int) -> schemas.Track:
    return schemas.Track.model_validate(track_json(bundle, row))


def artist_out(bundle: Bundle, row: int) -> schemas.Artist:
    return schemas.Artist.model_validate(artist_json(bundle, row))
