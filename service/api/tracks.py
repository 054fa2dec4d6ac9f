from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from starlette.concurrency import run_in_threadpool

from indexes.ensemble import ENSEMBLE
from service import neighbours, recommend
from service.api import access, schemas
from service.api.deps import (
    NOT_FOUND,
    Json,
    ListContext,
    ListLimit,
    ListsOf,
    Loaded,
    RadioLimit,
    SearchText,
    body,
    kept,
    ranked_tracks_json,
    rendered,
    scored_tracks_json,
    track_json,
    track_out,
    track_row,
    tracks_json,
)
from service.api.ids import TrackId
from service.bundle_holder import LoadedBundle
from service.list_cache import ListKey
from service.recommend import Item
from service.store.base import RADIO, StoreUnavailable

router = APIRouter(prefix="/v1/tracks", tags=["tracks"], dependencies=[Depends(access.CATALOG)])

Model = Annotated[str, Query(description="a model of the bundle, or `ensemble`")]
Explain = Annotated[
    bool, Query(description="add each item's `sources`: which candidate sources put it there")
]


@router.get("", response_model=schemas.TrackList)
async def search_tracks(loaded: Loaded, limit: ListLimit, q: SearchText = "") -> Json:
    """Tracks whose title or artist's name contains `q` (case-insensitive), most listened
    first; empty `q` lists."""
    rows = recommend.search_tracks(loaded.bundle, query=q, limit=limit)
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
    ctx: ListsOf,
    limit: ListLimit,
    model: Model = ENSEMBLE,
    explain: Explain = False,
) -> Response:
    """The tracks most similar to one track, at most `artist_cap` per artist: for the ensemble,
    the track's radio list (in memory, else from the store, else computed and written back);
    for one model, its nearest neighbours. `explain=true` adds to each item the sources whose
    candidates held it (the radio's candidates per source)."""
    loaded = ctx.loaded
    b = loaded.bundle
    recommend.check_model(loaded, source=model)
    row = track_row(b, track_id)
    items = answer = None
    if model == ENSEMBLE:
        key = neighbours.radio_key(loaded, row=row, shape=ctx.shape)
        if not explain:  # an answer of the radio list: rendered once (`ResponseCache`)
            answer = ("similar", key, limit)
            if (done := ctx.responses.get(answer)) is not None:
                return rendered(done)
        items = await _similar_from_radio(loaded, ctx, key=key, row=row, limit=limit)
        if items is None:
            answer = None
    if items is None:  # one model; or beyond the radio list, in the radio's same ranking
        items = recommend.similar_tracks(
            loaded, row=row, limit=limit, source=model, artist_cap=ctx.settings.artist_cap,
            per_source=ctx.shape.per_source if model == ENSEMBLE else None,
        )  # fmt: skip
    columns = {}
    if explain:  # the candidate lists of every source: a few ANN queries, on a thread
        columns["sources"] = await run_in_threadpool(
            recommend.sources_of, loaded, row=row, rows=[i.row for i in items],
            per_source=ctx.shape.per_source,
        )  # fmt: skip
    content = {
        "track": track_json(b, row), "model": model,
        "items": scored_tracks_json(b, items, **columns),
    }  # fmt: skip
    return body(content) if answer is None else kept(ctx, answer, content)


async def _similar_from_radio(
    loaded: LoadedBundle, ctx: ListContext, *, key: ListKey, row: int, limit: int
) -> list[Item] | None:
    """From the list in memory or the store on the event loop; else computed on a thread (the
    store is not needed). None when the list cannot tell them."""
    radio = ctx.cache.get(key)
    store = ctx.stores.optional()
    if radio is None and store is not None:
        try:
            stored = await store.get_async(kind=RADIO, version=key.version, key=key.key)
        except StoreUnavailable:  # reported by the monitor's store; computed without it
            store = None
        else:
            radio = neighbours.kept_radio(loaded, stored, key=key, cache=ctx.cache)
    if radio is None:
        radio = await run_in_threadpool(
            neighbours.radio_list_anyway, loaded, store, row=row, shape=ctx.shape,
            cache=ctx.cache, looked_up=True, read=False,
        )  # fmt: skip
    return neighbours.similar_from_radio(
        loaded, radio, shape=ctx.shape, limit=limit, artist_cap=ctx.settings.artist_cap
    )


@router.get(
    "/{track_id:id}/radio-neighbours",
    response_model=schemas.RadioNeighbours,
    responses={**NOT_FOUND, 503: {"model": schemas.Unavailable}},
)
async def radio_neighbours(track_id: TrackId, ctx: ListsOf, limit: RadioLimit) -> Response:
    """The track's top radio neighbours (the ensemble's best, a few per artist), from the
    worker's memory or the store's cache; on a miss they are computed, written back and
    served. 503 if the store is down and the list is not in memory."""
    loaded = ctx.loaded
    b = loaded.bundle
    row = track_row(b, track_id)
    shape, cache = ctx.shape, ctx.cache
    key = neighbours.radio_key(loaded, row=row, shape=shape)
    answer = ("radio-neighbours", key, limit)
    if (done := ctx.responses.get(answer)) is not None:
        return rendered(done)
    radio, origin = cache.get(key), neighbours.CACHE
    if radio is None:  # the store (read on the event loop), or computed and written back
        stored = await ctx.stores.read(
            lambda store: store.get_async(kind=RADIO, version=key.version, key=key.key)
        )
        radio = neighbours.kept_radio(loaded, stored, key=key, cache=cache)
        ctx.metrics.cache_read("radio", hit=radio is not None)
    if radio is None:
        computed, origin = await ctx.stores.run(
            lambda store: neighbours.radio_list(
                loaded, store, row=row, shape=shape, cache=cache, looked_up=True, read=False
            )
        )
        radio = computed
    content = {
        "track": track_json(b, row),
        "source": origin,
        "items": ranked_tracks_json(b, radio, limit=limit),
    }
    # the answer of a list from memory or the store's cache is the same every time; a
    # computed one says so, once
    return kept(ctx, answer, content) if origin == neighbours.CACHE else body(content)
