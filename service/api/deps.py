"""Dependencies shared by the routers."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any

import numpy as np
import orjson
from fastapi import Depends, Request
from fastapi.responses import Response
from numpy.typing import NDArray

from indexes.bundle import Bundle
from service.api import schemas
from service.bundles import BundleHolder, LoadedBundle
from service.metrics import Metrics
from service.recommend import Item
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


def tracks_json(
    bundle: Bundle, rows: Sequence[int] | NDArray[np.integer[Any]], **columns: Sequence[Any]
) -> list[dict[str, Any]]:
    """Tracks as the JSON objects of `schemas.Track`, plus one field per `columns` entry (e.g.
    score=[...]).

    List endpoints build these as plain dicts in a few numpy gathers and return them with
    `body()`: the values come from the bundle, so building and validating dozens of pydantic
    models per request (and FastAPI validating the response once more) would cost more than
    the recommendation. The schemas stay the OpenAPI contract; the API tests validate these
    bodies against them."""
    t, a = bundle.tracks, bundle.artists
    assert t.artist is not None
    r = np.asarray(rows, dtype=np.int64)
    art = np.asarray(t.artist[r], dtype=np.int64)
    out = [
        {"id": i, "name": n, "artist": {"id": ai, "name": an}, "listeners": lis}
        for i, n, ai, an, lis in zip(
            t.ids_of(r), t.names.take(r), a.ids_of(art), a.names.take(art),
            np.asarray(t.listeners[r], dtype=np.int64).tolist(), strict=True,
        )
    ]  # fmt: skip
    return _with_columns(out, columns)


def track_json(bundle: Bundle, row: int) -> dict[str, Any]:
    """One track as the JSON object of `schemas.Track`."""
    return tracks_json(bundle, [row])[0]


def artists_json(
    bundle: Bundle, rows: Sequence[int] | NDArray[np.integer[Any]], **columns: Sequence[Any]
) -> list[dict[str, Any]]:
    """Artists as the JSON objects of `schemas.Artist` (plus `columns`); see `tracks_json`."""
    a = bundle.artists
    r = np.asarray(rows, dtype=np.int64)
    out = [
        {"id": i, "name": n, "listeners": lis}
        for i, n, lis in zip(
            a.ids_of(r), a.names.take(r), np.asarray(a.listeners[r], dtype=np.int64).tolist(),
            strict=True,
        )
    ]  # fmt: skip
    return _with_columns(out, columns)


def artist_json(bundle: Bundle, row: int) -> dict[str, Any]:
    return artists_json(bundle, [row])[0]


def _with_columns(
    out: list[dict[str, Any]], columns: dict[str, Sequence[Any]]
) -> list[dict[str, Any]]:
    """Adds field `name` = values[i] to out[i], for each column."""
    for name, values in columns.items():
        for d, v in zip(out, values, strict=True):
            d[name] = v
    return out


def _scores(items: Sequence[Item]) -> list[float]:
    """The items' scores as JSON can carry them (a non-finite float becomes 0.0)."""
    return [v if math.isfinite(v) else 0.0 for v in (float(i.score) for i in items)]


def scored_tracks_json(
    bundle: Bundle, items: Sequence[Item], **columns: Sequence[Any]
) -> list[dict[str, Any]]:
    """Ranked items as tracks with their `score` (plus `columns`); see `tracks_json`."""
    return tracks_json(bundle, [i.row for i in items], score=_scores(items), **columns)


def scored_artists_json(bundle: Bundle, items: Sequence[Item]) -> list[dict[str, Any]]:
    """Ranked items as artists with their `score`; see `tracks_json`."""
    return artists_json(bundle, [i.row for i in items], score=_scores(items))


class Json(Response):
    """JSON rendered by orjson (~15x faster than the standard library's encoder on a list of
    20 tracks: 5.5 against 91 µs here)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def body(content: dict[str, Any]) -> Json:
    """A 200 JSON response from plain data (the route's response_model documents it)."""
    return Json(content)


def track_out(bundle: Bundle, row: int) -> schemas.Track:
    return schemas.Track.model_validate(track_json(bundle, row))


def artist_out(bundle: Bundle, row: int) -> schemas.Artist:
    return schemas.Artist.model_validate(artist_json(bundle, row))
