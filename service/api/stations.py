from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from service import auth, stations
from service.api import schemas
from service.api.access import Listener
from service.api.deps import (
    NOT_FOUND,
    Json,
    StationsOf,
    Stores,
    artist_row,
    body,
    track_row,
    tracks_json,
)
from service.api.ids import StationId
from service.radio import Station

router = APIRouter(prefix="/v1/stations", tags=["stations"])

ERRORS: dict[int | str, dict[str, Any]] = {**NOT_FOUND, 503: {"model": schemas.Unavailable}}


def view(station: Station, revision: int) -> schemas.Station:
    return schemas.Station(
        id=station.id, user_id=station.user, variant=station.variant,
        bundle_version=station.version, seed=station.seed, seeds=station.seeds,
        played=station.played_count, queued=len(station.queue), liked=station.liked,
        thumbed_down=station.banned, dropped_artists=station.banned_artists,
        events=station.counts, revision=revision,
    )  # fmt: skip


@router.post("", status_code=201, response_model=schemas.Station, responses=ERRORS)
async def create_station(
    body: schemas.StationCreate, ctx: StationsOf, caller: Listener
) -> schemas.Station:
    """Starts a station from seed tracks and/or artists: a weighted shuffle of the seeds'
    radio neighbours, pinned to the served bundle, in the user's experiment variant. `user_id`
    is the token's user (an admin's token may create one for anyone)."""
    loaded = ctx.loaded
    auth.check_acting_for(caller, user_id=body.user_id)
    for t in body.tracks:
        track_row(loaded.bundle, t)
    for a in body.artists:
        artist_row(loaded.bundle, a)
    seeds = stations.seed_tracks(loaded, tracks=body.tracks, artists=body.artists,
                                 per_artist=ctx.config.seed_tracks_per_artist)  # fmt: skip
    station, revision = await ctx.stores.run(lambda store: stations.create(
        loaded, store, user=body.user_id, seeds=seeds, config=ctx.config, seed=body.seed,
        cache=ctx.cache,
    ))  # fmt: skip
    ctx.metrics.station_events.labels("created", station.variant).inc()
    return view(station, revision)


@router.get("/{station_id:id}", response_model=schemas.Station, responses=ERRORS)
async def get_station(station_id: StationId, monitor: Stores, caller: Listener) -> schemas.Station:
    owner = auth.owner_of(caller)
    station, revision = await monitor.run(
        lambda store: stations.get(store, station_id=station_id, owner=owner)
    )
    return view(station, revision)


@router.get("/{station_id:id}/tracks", response_model=schemas.StationTracks, responses=ERRORS)
async def next_tracks(
    station_id: StationId,
    ctx: StationsOf,
    caller: Listener,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> Json:
    """The station's next tracks; this advances the station (they count as played)."""
    loaded = ctx.loaded
    owner = auth.owner_of(caller)
    station, tracks = await ctx.stores.run(lambda store: stations.next_tracks(
        loaded, store, station_id=station_id, n=limit, config=ctx.config, cache=ctx.cache,
        owner=owner,
    ))  # fmt: skip
    ctx.metrics.station_events.labels("track_served", station.variant).inc(len(tracks))
    rows = [loaded.bundle.tracks.row_of(t) for t in tracks]
    return body({
        "station_id": station_id,
        "items": tracks_json(loaded.bundle, [row for row in rows if row is not None]),
    })  # fmt: skip


@router.get("/{station_id:id}/queue", response_model=schemas.StationQueue, responses=ERRORS)
async def station_queue(
    station_id: StationId,
    ctx: StationsOf,
    caller: Listener,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> Json:
    """What the station would play next (as `/tracks` would serve them now) and what it played
    last; this does not advance the station."""
    loaded = ctx.loaded
    owner = auth.owner_of(caller)
    station, revision, upcoming = await ctx.stores.run(lambda store: stations.upcoming(
        loaded, store, station_id=station_id, n=limit, config=ctx.config, cache=ctx.cache,
        owner=owner,
    ))  # fmt: skip
    b = loaded.bundle
    played = [b.tracks.row_of(t) for t in reversed(station.played[-limit:])]
    return body({
        "station": view(station, revision).model_dump(),
        "upcoming": tracks_json(b, [r for r in map(b.tracks.row_of, upcoming) if r is not None]),
        "played": tracks_json(b, [r for r in played if r is not None]),
    })  # fmt: skip


@router.post("/{station_id:id}/feedback", response_model=schemas.FeedbackResult, responses=ERRORS)
async def feedback(
    station_id: StationId,
    body: schemas.Feedback,
    ctx: StationsOf,
    caller: Listener,
) -> schemas.FeedbackResult:
    """thumbs_up, thumbs_down, skip or completed on a track. Idempotent by `event_id`."""
    loaded = ctx.loaded
    track_row(loaded.bundle, body.track_id)
    owner = auth.owner_of(caller)
    station, revision, applied = await ctx.stores.run(lambda store: stations.feedback(
        loaded, store, station_id=station_id, event_id=body.event_id, kind=body.type,
        track=body.track_id, config=ctx.config, cache=ctx.cache, owner=owner,
    ))  # fmt: skip
    if applied:
        ctx.metrics.station_events.labels(body.type, station.variant).inc()
    return schemas.FeedbackResult(applied=applied, station=view(station, revision))


@router.delete("/{station_id:id}", status_code=204, responses=ERRORS)
async def delete_station(station_id: StationId, monitor: Stores, caller: Listener) -> Response:
    owner = auth.owner_of(caller)
    await monitor.run(lambda store: stations.delete(store, station_id=station_id, owner=owner))
    return Response(status_code=204)
