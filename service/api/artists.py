from typing import Annotated

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from service import neighbours, recommend
from service.api import schemas
from service.api.deps import (
    Json,
    Loaded,
    RequestMetrics,
    Stores,
    artist_json,
    artist_out,
    artist_row,
    artists_json,
    body,
    scored_artists_json,
)
from service.api.ids import ArtistId
from service.settings import Settings


def router(settings: Settings) -> APIRouter:
    r = APIRouter(prefix="/v1/artists", tags=["artists"])
    Limit = Annotated[int, Query(ge=1, le=settings.max_limit)]

    @r.get("", response_model=schemas.ArtistList)
    async def search_artists(
        loaded: Loaded,
        q: Annotated[str, Query(max_length=200)] = "",
        limit: Limit = settings.default_limit,
    ) -> Json:
        """Artists whose name contains `q` (case-insensitive), most listened first; empty `q` lists."""
        b = loaded.bundle
        rows = recommend.search(b.artists, query=q, limit=limit)
        return body({"items": artists_json(b, rows)})

    @r.get(
        "/{artist_id:id}",
        response_model=schemas.Artist,
        responses={404: {"model": schemas.Problem}},
    )
    async def get_artist(artist_id: ArtistId, loaded: Loaded) -> schemas.Artist:
        return artist_out(loaded.bundle, artist_row(loaded.bundle, artist_id))

    @r.get(
        "/{artist_id:id}/related",
        response_model=schemas.RelatedArtists,
        responses={404: {"model": schemas.Problem}},
    )
    async def related_artists(
        artist_id: ArtistId,
        loaded: Loaded,
        monitor: Stores,
        m: RequestMetrics,
        limit: Limit = neighbours.RELATED_SIZE,
    ) -> Json:
        """The artists most related to one artist (the ensemble of every model): the store's
        precomputed list when it has one, else computed from the bundle (also when the store
        is down)."""
        b = loaded.bundle
        row = artist_row(b, artist_id)
        listing = await run_in_threadpool(
            neighbours.related, loaded, monitor.optional(), row=row, limit=limit
        )
        if listing.store_error is not None:
            monitor.failed(listing.store_error)
            m.store_errors.inc()
        m.radio_cache.labels(
            "related", "hit" if listing.source == neighbours.CACHE else "miss"
        ).inc()
        return body({
            "artist": artist_json(b, row),
            "source": listing.source,
            "items": scored_artists_json(b, listing.items),
        })  # fmt: skip

    return r
