from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from starlette.concurrency import run_in_threadpool

from service import neighbours, recommend
from service.api import schemas
from service.api.deps import (
    Json,
    Loaded,
    RequestMetrics,
    Stores,
    body,
    scored_tracks_json,
    track_json,
    track_out,
    track_row,
    tracks_json,
)
from service.api.ids import TrackId
from service.settings import Settings


def router(settings: Settings) -> APIRouter:
    r = APIRouter(prefix="/v1/tracks", tags=["tracks"])
    Limit = Annotated[int, Query(ge=1, le=settings.max_limit)]

    @r.get("", response_model=schemas.TrackList)
    async def search_tracks(
        loaded: Loaded,
        q: Annotated[str, Query(max_length=200)] = "",
        limit: Limit = settings.default_limit,
    ) -> Json:
        """Tracks whose name contains `q` (case-insensitive), most listened first; empty `q` lists."""
        b = loaded.bundle
        rows = recommend.search(b.tracks, query=q, limit=limit)
        return body({"items": tracks_json(b, rows)})

    @r.get(
        "/{track_id:id}", response_model=schemas.Track, responses={404: {"model": schemas.Problem}}
    )
    async def get_track(track_id: TrackId, loaded: Loaded) -> schemas.Track:
        return track_out(loaded.bundle, track_row(loaded.bundle, track_id))

    @r.get(
        "/{track_id:id}/similar",
        response_model=schemas.SimilarTracks,
        responses={404: {"model": schemas.Problem}},
    )
    async def similar_tracks(
        track_id: TrackId,
        loaded: Loaded,
        limit: Limit = settings.default_limit,
        model: Annotated[
            str, Query(description="a model of the bundle, or `ensemble`")
        ] = "ensemble",
    ) -> Json:
        """The tracks most similar to one track, at most `artist_cap` per artist."""
        b = loaded.bundle
        allowed = recommend.sources(loaded, entity="tracks")
        if model not in allowed:
            raise HTTPException(
                status_code=422,
                detail=[{"loc": ["query", "model"], "msg": f"unknown model {model!r}; one of {allowed}",
                         "type": "value_error"}],
            )  # fmt: skip
        row = track_row(b, track_id)
        items = recommend.similar_tracks(
            loaded, row=row, limit=limit, source=model, artist_cap=settings.artist_cap
        )
        return body({
            "track": track_json(b, row),
            "model": model,
            "items": scored_tracks_json(b, items),
        })  # fmt: skip

    @r.get(
        "/{track_id:id}/radio-neighbours",
        response_model=schemas.RadioNeighbours,
        responses={404: {"model": schemas.Problem}, 503: {"model": schemas.Unavailable}},
    )
    async def radio_neighbours(
        track_id: TrackId,
        loaded: Loaded,
        monitor: Stores,
        m: RequestMetrics,
        limit: Annotated[int, Query(ge=1, le=settings.radio_size)] = settings.radio_size,
    ) -> Json:
        """The track's top radio neighbours (the ensemble's best, a few per artist), from the
        store's cache; on a miss they are computed, written back and served. 503 if the store
        is down."""
        b = loaded.bundle
        row = track_row(b, track_id)
        listing = await run_in_threadpool(
            neighbours.radio_neighbours,
            loaded,
            monitor.store(),
            row=row,
            size=settings.radio_size,
            artist_cap=settings.radio_artist_cap,
            per_source=settings.radio_candidates_per_source,
        )
        m.radio_cache.labels("radio", "hit" if listing.source == neighbours.CACHE else "miss").inc()
        return body({
            "track": track_json(b, row),
            "source": listing.source,
            "items": scored_tracks_json(b, listing.items[:limit]),
        })  # fmt: skip

    return r
