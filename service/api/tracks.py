from typing import Annotated

from fastapi import APIRouter, Query

from service import neighbours, recommend
from service.api import schemas
from service.api.deps import (
    NOT_FOUND,
    AppSettings,
    Json,
    ListLimit,
    Loaded,
    RadioLimit,
    RequestMetrics,
    SearchText,
    Stores,
    body,
    scored_tracks_json,
    track_json,
    track_out,
    track_row,
    tracks_json,
)
from service.api.ids import TrackId

router = APIRouter(prefix="/v1/tracks", tags=["tracks"])

Model = Annotated[str, Query(description="a model of the bundle, or `ensemble`")]


@router.get("", response_model=schemas.TrackList)
async def search_tracks(loaded: Loaded, limit: ListLimit, q: SearchText = "") -> Json:
    """Tracks whose name contains `q` (case-insensitive), most listened first; empty `q` lists."""
    rows = recommend.search(loaded.bundle.tracks, query=q, limit=limit)
    return body({"items": tracks_json(loaded.bundle, rows)})


@router.get("/{track_id:id}", response_model=schemas.Track, responses=NOT_FOUND)
async def get_track(track_id: TrackId, loaded: Loaded) -> schemas.Track:
    return track_out(loaded.bundle, track_row(loaded.bundle, track_id))


@router.get(
    "/{track_id:id}/similar",
    response_model=schemas.SimilarTracks,
    responses=NOT_FOUND,
)
async def similar_tracks(
    track_id: TrackId,
    loaded: Loaded,
    settings: AppSettings,
    limit: ListLimit,
    model: Model = "ensemble",
) -> Json:
    """The tracks most similar to one track, at most `artist_cap` per artist."""
    b = loaded.bundle
    row = track_row(b, track_id)
    items = recommend.similar_tracks(
        loaded, row=row, limit=limit, source=model, artist_cap=settings.artist_cap
    )
    return body(
        {"track": track_json(b, row), "model": model, "items": scored_tracks_json(b, items)}
    )


@router.get(
    "/{track_id:id}/radio-neighbours",
    response_model=schemas.RadioNeighbours,
    responses={**NOT_FOUND, 503: {"model": schemas.Unavailable}},
)
async def radio_neighbours(
    track_id: TrackId,
    loaded: Loaded,
    monitor: Stores,
    m: RequestMetrics,
    settings: AppSettings,
    limit: RadioLimit,
) -> Json:
    """The track's top radio neighbours (the ensemble's best, a few per artist), from the
    store's cache; on a miss they are computed, written back and served. 503 if the store
    is down."""
    b = loaded.bundle
    row = track_row(b, track_id)
    listing = await monitor.run(lambda store: neighbours.radio_neighbours(
        loaded, store, row=row, size=settings.radio_size, artist_cap=settings.radio_artist_cap,
        per_source=settings.radio_candidates_per_source,
    ))  # fmt: skip
    m.cache_read("radio", hit=listing.origin == neighbours.CACHE)
    return body({
        "track": track_json(b, row),
        "source": listing.origin,
        "items": scored_tracks_json(b, listing.items[:limit]),
    })  # fmt: skip
