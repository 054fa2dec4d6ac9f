from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from service import neighbours, recommend
from service.api import schemas
from service.api.deps import (
    NOT_FOUND,
    Json,
    ListLimit,
    Loaded,
    RelatedLimit,
    RequestMetrics,
    SearchText,
    Stores,
    artist_json,
    artist_out,
    artist_row,
    artists_json,
    body,
    scored_artists_json,
)
from service.api.ids import ArtistId

router = APIRouter(prefix="/v1/artists", tags=["artists"])


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
async def related_artists(
    artist_id: ArtistId, loaded: Loaded, monitor: Stores, m: RequestMetrics, limit: RelatedLimit
) -> Json:
    """The artists most related to one artist (the ensemble of every model): the store's
    precomputed list when it has one, else computed from the bundle (also when the store
    is down)."""
    b = loaded.bundle
    row = artist_row(b, artist_id)
    listing = await run_in_threadpool(
        neighbours.related, loaded, monitor.optional(), row=row, limit=limit
    )
    m.cache_read("related", hit=listing.origin == neighbours.CACHE)
    return body({
        "artist": artist_json(b, row),
        "source": listing.origin,
        "items": scored_artists_json(b, listing.items),
    })  # fmt: skip
