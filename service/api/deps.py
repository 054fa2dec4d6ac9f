"""Dependencies shared by the routers."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
import orjson
from fastapi import Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute
from numpy.typing import NDArray
from starlette.routing import BaseRoute

from indexes.bundle import Bundle
from service.api import schemas
from service.bundle_holder import BundleHolder, LoadedBundle
from service.errors import ModelUnavailable, NotFound
from service.list_cache import ListCache, RankedRows
from service.metrics import Metrics
from service.neighbours import RELATED_SIZE, RadioShape
from service.recommend import Item
from service.response_cache import ResponseCache
from service.settings import Settings
from service.station_turns import StationTurns
from service.stations import StationConfig
from service.store_monitor import StoreMonitor

VERSION_SCOPE_KEY = "segue.bundle_version"

# The dependencies are async, so that FastAPI runs them on the event loop instead of a thread
# hop each per request.


async def loaded_bundle(request: Request) -> AsyncIterator[LoadedBundle]:
    """The bundle this request uses, held open until the request is done."""
    holder: BundleHolder = request.app.state.holder
    with holder.use() as loaded:
        request.scope[VERSION_SCOPE_KEY] = loaded.version
        yield loaded


def _state(name: str) -> Callable[[Request], Awaitable[Any]]:
    """A dependency: the app's `state.<name>` (set by `create_app` or its lifespan)."""

    async def dependency(request: Request) -> Any:
        return getattr(request.app.state, name)

    return dependency


# what a route asks for, once for every router (FastAPI reads these Annotated dependencies)
Loaded = Annotated[LoadedBundle, Depends(loaded_bundle)]
Stores = Annotated[StoreMonitor, Depends(_state("stores"))]
RequestMetrics = Annotated[Metrics, Depends(_state("metrics"))]
AppSettings = Annotated[Settings, Depends(_state("settings"))]


@dataclass(frozen=True)
class StationContext:
    """What the station routes use of the app, the bundle included, as one dependency (see
    `ListContext`)."""

    loaded: LoadedBundle
    config: StationConfig
    stores: StoreMonitor
    metrics: Metrics
    cache: ListCache


async def _station_context(request: Request) -> AsyncIterator[StationContext]:
    """The context, with the bundle held open until the request is done (`loaded_bundle`); on a
    route of one station (its id in the path), held during that station's turn in this worker
    (`StationTurns`: a bounded wait, then 409)."""
    state = request.app.state
    holder: BundleHolder = state.holder
    with holder.use() as loaded:
        request.scope[VERSION_SCOPE_KEY] = loaded.version
        ctx = StationContext(loaded=loaded, config=state.station_config, stores=state.stores,
                             metrics=state.metrics, cache=state.list_cache)  # fmt: skip
        station_id = request.path_params.get("station_id")
        if station_id is None:
            yield ctx
            return
        turns: StationTurns = state.station_turns
        async with turns.turn(str(station_id), gone=request.is_disconnected):
            yield ctx


StationsOf = Annotated[StationContext, Depends(_station_context)]


@dataclass(frozen=True)
class ListContext:
    """What the list routes use of the app, the bundle included, as one dependency: FastAPI's
    work per dependency and request is more than these routes' own (see loadtest/README.md)."""

    loaded: LoadedBundle
    settings: Settings
    cache: ListCache
    stores: StoreMonitor
    metrics: Metrics
    shape: RadioShape
    responses: ResponseCache


async def _list_context(request: Request) -> AsyncIterator[ListContext]:
    """The context, with the bundle held open until the request is done (`loaded_bundle`)."""
    state = request.app.state
    holder: BundleHolder = state.holder
    with holder.use() as loaded:
        request.scope[VERSION_SCOPE_KEY] = loaded.version
        yield ListContext(loaded=loaded, settings=state.settings, cache=state.list_cache,
                          stores=state.stores, metrics=state.metrics,
                          shape=radio_shape(state.settings),
                          responses=state.response_cache)  # fmt: skip


ListsOf = Annotated[ListContext, Depends(_list_context)]
SearchText = Annotated[str, Query(max_length=200)]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": schemas.Problem}}


class Limit:
    """The `limit` query parameter of a list: 1 to `most(settings)`, `default(settings)` when
    not given.

    FastAPI takes a parameter's bounds and default from the route's signature, fixed at import,
    and these come from the settings of each app: so FastAPI checks the type and the minimum,
    this the maximum (with FastAPI's own error), and `document_limits` writes both into the
    app's OpenAPI."""

    def __init__(
        self, *, most: Callable[[Settings], int], default: Callable[[Settings], int]
    ) -> None:
        self.most = most
        self.default = default

    async def __call__(
        self, request: Request, limit: Annotated[int | None, Query(ge=1)] = None
    ) -> int:
        settings: Settings = request.app.state.settings  # not a dependency: one less to solve
        if limit is None:
            return self.default(settings)
        most = self.most(settings)
        if limit > most:
            raise RequestValidationError([{
                "type": "less_than_equal", "loc": ("query", "limit"),
                "msg": f"Input should be less than or equal to {most}",
                "input": request.query_params["limit"], "ctx": {"le": most},
            }])  # fmt: skip
        return limit

    def schema(self, settings: Settings) -> dict[str, Any]:
        """The OpenAPI schema of the parameter, as FastAPI writes one from a signature."""
        return {"type": "integer", "maximum": self.most(settings), "minimum": 1,
                "default": self.default(settings), "title": "Limit"}  # fmt: skip


ListLimit = Annotated[
    int, Depends(Limit(most=lambda s: s.max_limit, default=lambda s: s.default_limit))
]
RelatedLimit = Annotated[
    int, Depends(Limit(most=lambda s: s.max_limit, default=lambda s: RELATED_SIZE))
]
RadioLimit = Annotated[
    int, Depends(Limit(most=lambda s: s.radio_size, default=lambda s: s.radio_size))
]


def radio_shape(settings: Settings) -> RadioShape:
    """The shape of the radio lists the settings make (and `segue precompute` writes)."""
    return RadioShape(
        size=settings.radio_size, artist_cap=settings.radio_artist_cap,
        per_source=settings.radio_candidates_per_source, search_k=settings.search_k,
    )  # fmt: skip


def document_limits(
    openapi: dict[str, Any], *, routes: Sequence[BaseRoute], settings: Settings
) -> None:
    """Writes the bounds and default of every `Limit` parameter into the app's OpenAPI."""
    for route in routes:
        if not isinstance(route, APIRoute) or (limit := _limit_of(route)) is None:
            continue
        for method in route.methods or ():
            operation = openapi["paths"][route.path_format][method.lower()]
            for parameter in operation["parameters"]:
                if parameter["in"] == "query" and parameter["name"] == "limit":
                    parameter["schema"] = limit.schema(settings)


def document_errors(openapi: dict[str, Any], *, routes: Sequence[BaseRoute]) -> None:
    """The answers the middleware and the station turns give, in the operations that get them:
    413 for a body over SEGUE_MAX_BODY_BYTES, 409 (Retry-After) for a busy station."""
    problem = {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for route in routes:
        if not isinstance(route, APIRoute):
            continue
        turns = "station_id" in route.param_convertors and any(
            d.call is _station_context for d in route.dependant.dependencies
        )
        for method in route.methods or ():
            responses = openapi["paths"][route.path_format][method.lower()]["responses"]
            if route.body_field is not None:
                responses["413"] = {"description": "request body over SEGUE_MAX_BODY_BYTES",
                                    "content": problem}  # fmt: skip
            if turns:
                responses["409"] = {
                    "description": "the station stayed busy for SEGUE_STATION_BUSY_SECONDS; "
                    "retry after the Retry-After header's seconds",
                    "content": problem,
                }


def document_models(openapi: dict[str, Any], *, models: Sequence[str]) -> None:
    """The `model` query parameter's enum: the models of the bundle served (the server
    answers 422 for any other)."""
    for path in openapi["paths"].values():
        for operation in path.values():
            for parameter in operation.get("parameters", ()):
                if parameter["in"] == "query" and parameter["name"] == "model":
                    parameter["schema"]["enum"] = list(models)


def _limit_of(route: APIRoute) -> Limit | None:
    for dependency in route.dependant.dependencies:
        if isinstance(dependency.call, Limit):
            return dependency.call
    return None


def _row(row_of: Callable[[str], int | None], *, kind: str, external_id: str) -> int:
    row = row_of(external_id)
    if row is None:
        raise NotFound(kind, external_id)
    return row


def track_row(bundle: Bundle, track_id: str) -> int:
    return _row(bundle.tracks.row_of, kind="track", external_id=track_id)


def artist_row(bundle: Bundle, artist_id: str) -> int:
    return _row(bundle.artists.row_of, kind="artist", external_id=artist_id)


def user_row(bundle: Bundle, user_id: str) -> int:
    if bundle.users is None:
        raise ModelUnavailable(f"bundle {bundle.version} has no users (format 1)")
    return _row(bundle.users.row_of, kind="user", external_id=user_id)


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


def ranked_tracks_json(bundle: Bundle, ranked: RankedRows, *, limit: int) -> list[dict[str, Any]]:
    """The first `limit` of a list in memory as tracks with their `score`; see `tracks_json`."""
    scores = ranked.scores[:limit].tolist()
    return tracks_json(
        bundle, ranked.rows[:limit], score=[v if math.isfinite(v) else 0.0 for v in scores]
    )


def scored_artists_json(bundle: Bundle, items: Sequence[Item]) -> list[dict[str, Any]]:
    """Ranked items as artists with their `score`; see `tracks_json`."""
    return artists_json(bundle, [i.row for i in items], score=_scores(items))


class Json(Response):
    """JSON rendered by orjson, much faster than the standard library's encoder on these lists
    (see loadtest/README.md)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def body(content: dict[str, Any]) -> Json:
    """A 200 JSON response from plain data (the route's response_model documents it)."""
    return Json(content)


def rendered(content: bytes) -> Response:
    """A 200 JSON response of an answer rendered before (`ResponseCache`)."""
    return Response(content, media_type=Json.media_type)


def kept(ctx: ListContext, answer: Hashable, content: dict[str, Any]) -> Json:
    """`body(content)`, its rendered bytes kept as `answer` (`ResponseCache`)."""
    response = body(content)
    ctx.responses.put(answer, bytes(response.body))
    return response


def track_out(bundle: Bundle, row: int) -> schemas.Track:
    return schemas.Track.model_validate(track_json(bundle, row))


def artist_out(bundle: Bundle, row: int) -> schemas.Artist:
    return schemas.Artist.model_validate(artist_json(bundle, row))
