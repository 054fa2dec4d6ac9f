from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool

from service import neighbours, recommend
from service.api import access, schemas
from service.api.deps import (
    NOT_FOUND,
    Json,
    ListLimit,
    ListsOf,
    Loaded,
    RelatedLimit,
    SearchText,
    artist_json,
    artist_out,
    artist_row,
    artists_json,
    body,
    scored_artists_json,
)
from service.api.ids import ArtistId

router = APIRouter(prefix="/v1/artists", tags=["artists"], dependencies=[Depends(access.CATALOG)])


@router.get("", response_model=schemas.ArtistList)
async def search_artists(loaded: Loaded, limit: ListLimit, q: SearchText = "") -> Json:
    """Artists whose name contains `q` (case-insensitive), most listened first; empty `q` lists."""
    rows = recommend.search(loaded.bundle.artists, query=q, limit=limit)
    return body({"items": artists_json(loaded.bundle, rows)})


@router.get("/{artist_id:id}", response_model=schemas.Artist, responses=NOT_FOUND)
async def get_artist(artist_id: ArtistId, loaded: Loaded) -> schemas.Artist:
    return artist_out(loaded.bundle, artist_row(loaded.bundle, artist_id))


@router.get(
    "/{artist_id:id}/related",
    response_model=schemas.RelatedArtists,
    responses=NOT_FOUND,
)
async def related_artists(artist_id: ArtistId, ctx: ListsOf, limit: RelatedLimit) -> Json:
    """The artists most related to one artist (the ensemble of every model): the precomputed
    list in the worker's memory or the store when there is one, else computed from the bundle
    (also when the store is down)."""
    loaded = ctx.loaded
    b = loaded.bundle
    row = artist_row(b, artist_id)
    key = neighbours.related_key(loaded, row=row)
    listing = neighbours.cached_related(ctx.cache, key=key, limit=limit)
    if listing is None:  # not in memory: the store, or computed (on a thread)
        listing = await run_in_threadpool(
            neighbours.related, loaded, ctx.stores.optional(), row=row, limit=limit,
            cache=ctx.cache, looked_up=True,
        )  # fmt: skip
        ctx.metrics.cache_read("related", hit=listing.origin == neighbours.CACHE)
    return body({
        "artist": artist_json(b, row),
        "source": listing.origin,
        "items": scored_artists_json(b, listing.items),
    })  # fmt: skip
