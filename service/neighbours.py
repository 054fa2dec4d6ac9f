"""Radio neighbours and related artists, read through the store: plain Python, no web framework.

A track's radio neighbours (the top 250 of the ensemble) are read from the worker's LRU, then
from the store; on a miss they are computed from the bundle, written back and served. Radio lists
are kept under a store version made of the bundle version (and variant) and a hash of the settings
that shape them (`list_version`), so two versions, or two list settings, never mix. Similar tracks
(of the ensemble) are the same list, capped and cut by the endpoint. Related artists come from the
store when `segue precompute` (or an earlier request) put them there, and from the bundle
otherwise; they never need the store, so they keep answering when it is down.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from indexes.ensemble import ENSEMBLE, Scorer
from service.bundle_holder import LoadedBundle
from service.list_cache import ListCache, ListKey, RankedRows
from service.recommend import Item, cap_per_artist, related_artists
from service.store.base import LIST_FORMAT, RADIO, RELATED, Ranked, Store, StoreUnavailable

log = logging.getLogger("segue")

RADIO_SIZE = 250  # radio neighbours kept per track
RELATED_SIZE = 20  # related artists kept per artist
CACHE, COMPUTED = "cache", "computed"


@dataclass(frozen=True)
class Listing:
    items: list[Item]
    origin: str  # CACHE or COMPUTED: where the list came from (the API calls it "source")


@dataclass(frozen=True, kw_only=True)
class RadioShape:
    """The settings that shape a radio list (SEGUE_RADIO_SIZE, _ARTIST_CAP, _CANDIDATES_PER_SOURCE)."""

    size: int = RADIO_SIZE
    artist_cap: int
    per_source: int
    # SEGUE_SEARCH_K: the ANN candidates and their similarities change with it (None: each
    # index's own, which the bundle version already stands for)
    search_k: int | None = None

    def digest(self) -> str:
        """A short hash of the shape (and of the list encoding): part of the lists' store key."""
        return _digest(self.size, self.artist_cap, self.per_source, self.search_k)


@functools.lru_cache(maxsize=64)  # asked for on every request, of a handful of shapes
def _digest(size: int, artist_cap: int, per_source: int, search_k: int | None) -> str:
    text = f"size={size};cap={artist_cap};per_source={per_source};f{LIST_FORMAT}"
    if search_k is not None:
        text += f";search_k={search_k}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def list_version(version: str, *, shape: RadioShape) -> str:
    """The store version radio lists of this shape are kept under: `version` (a bundle version,
    or `experiments.store_version` of a variant) and the shape's digest, so that lists made
    with other settings are never served."""
    return f"{version}@{shape.digest()}"


def compute_radio(
    loaded: LoadedBundle,
    *,
    row: int,
    size: int,
    artist_cap: int,
    per_source: int,
    scorer: Scorer | None = None,
) -> list[Item]:
    """The top `size` radio neighbours of a track by the ensemble (the bundle's weights, or a
    variant's `scorer`), at most `artist_cap` per artist."""
    scorer = scorer or loaded.scorers["tracks"]
    rows, scores = scorer.top(row, scorer.n_items, source=ENSEMBLE, per_source=per_source)
    artist = loaded.bundle.tracks.artist
    assert artist is not None
    return cap_per_artist(rows, scores, artist=artist, cap=artist_cap, limit=size)


def radio_neighbours(
    loaded: LoadedBundle,
    store: Store,
    *,
    row: int,
    size: int = RADIO_SIZE,
    artist_cap: int,
    per_source: int,
    cache: ListCache | None = None,
) -> Listing:
    """Read-through: the list from `cache` or the store when present; else compute, write
    back and return it.

    Raises StoreUnavailable when the store is down (the list lives in the store)."""
    shape = RadioShape(size=size, artist_cap=artist_cap, per_source=per_source)
    ranked, origin = radio_list(loaded, store, row=row, shape=shape, cache=cache)
    return Listing(items=ranked.items(), origin=origin)


def radio_key(loaded: LoadedBundle, *, row: int, shape: RadioShape) -> ListKey:
    version = list_version(loaded.version, shape=shape)
    return ListKey(kind=RADIO, version=version, key=loaded.bundle.tracks.id_of(row))


def radio_list(
    loaded: LoadedBundle,
    store: Store | None,
    *,
    row: int,
    shape: RadioShape,
    cache: ListCache | None = None,
    looked_up: bool = False,
    must_write: bool = True,
    read: bool = True,
) -> tuple[RankedRows, str]:
    """The radio list of `row` and its origin (CACHE or COMPUTED): from `cache` (unless the
    caller has just `looked_up` it there), else from the store (unless the caller has just
    `read` it there), else computed and written back.
    Only a list the store holds goes into `cache` (what memory serves is what the store has).
    StoreUnavailable from the store is raised, but from the write-back only if `must_write`."""
    key = radio_key(loaded, row=row, shape=shape)
    found = cache.get(key) if cache is not None and not looked_up else None
    if found is not None:
        return found, CACHE
    if store is not None and read:
        found = kept_radio(
            loaded, store.get(kind=RADIO, version=key.version, key=key.key), key=key, cache=cache
        )
        if found is not None:
            return found, CACHE
    items = compute_radio(
        loaded, row=row, size=shape.size, artist_cap=shape.artist_cap, per_source=shape.per_source
    )
    stored = store is not None and _write(
        store, kind=RADIO, key=key, ranked=ranked(loaded, items), must=must_write
    )
    found = RankedRows.of_items(items)
    if cache is not None and stored:
        cache.put(key, found)
    return found, COMPUTED


def kept_radio(
    loaded: LoadedBundle, cached: Ranked | None, *, key: ListKey, cache: ListCache | None
) -> RankedRows | None:
    """A radio list read from the store, as rows (and kept in `cache`); None for no list or
    one the bundle cannot hold (computed again)."""
    tracks = loaded.bundle.tracks
    found = (
        None if cached is None else stored_rows(cached, row_of=tracks.row_of, n_rows=len(tracks))
    )
    if found is not None and cache is not None:
        cache.put(key, found)
    return found


def _write(store: Store, *, kind: str, key: ListKey, ranked: Ranked, must: bool) -> bool:
    """Writes one list back; True if written (False when the store failed and `must` is off)."""
    try:
        store.put_many(kind=kind, version=key.version, items=[(key.key, ranked)])
    except StoreUnavailable:
        if must:
            raise
        return False
    return True


def radio_list_anyway(
    loaded: LoadedBundle, store: Store | None, *, row: int, shape: RadioShape, cache: ListCache,
    looked_up: bool = False, read: bool = True,
) -> RankedRows:  # fmt: skip
    """`radio_list` for an endpoint that does without the store: when it fails, the list is
    computed from the bundle (a store from `StoreMonitor` has reported the failure)."""
    try:
        return radio_list(
            loaded, store, row=row, shape=shape, cache=cache, looked_up=looked_up,
            must_write=False, read=read,
        )[0]  # fmt: skip
    except StoreUnavailable:  # the read failed
        return radio_list(loaded, None, row=row, shape=shape, cache=cache, looked_up=True)[0]


def similar_from_radio(
    loaded: LoadedBundle, radio: RankedRows, *, shape: RadioShape, limit: int, artist_cap: int
) -> list[Item] | None:
    """The similar tracks of the ensemble, `artist_cap` per artist, from the track's radio list
    (one ranking for both); None when the list cannot tell them: its own cap is lower, or it
    was cut at its size before `limit` tracks were found."""
    if shape.artist_cap < artist_cap:
        return None
    artist = loaded.bundle.tracks.artist
    assert artist is not None
    items = cap_per_artist(radio.rows, radio.scores, artist=artist, cap=artist_cap, limit=limit)
    if len(items) < limit and len(radio) >= shape.size:
        return None
    return items


def related(
    loaded: LoadedBundle,
    store: Store | None,
    *,
    row: int,
    limit: int,
    cache: ListCache | None = None,
    looked_up: bool = False,
) -> Listing:
    """Related artists from `cache` (unless the caller has just `looked_up` them there) or the
    store when they have them, else from the bundle (written back to both).

    Without a store (None) or when it fails, the list is computed from the bundle all the same
    (a store from `StoreMonitor` has reported the failure)."""
    key = related_key(loaded, row=row)
    memory = None if looked_up else cache
    if (found := cached_related(memory, key=key, limit=limit)) is not None:
        return found
    artists = loaded.bundle.artists
    if store is not None and limit <= RELATED_SIZE:
        try:
            cached = store.get(kind=RELATED, version=key.version, key=key.key)
        except StoreUnavailable:
            store = None  # nor is the list written back
        else:
            read = (
                None
                if cached is None
                else stored_items(cached, row_of=artists.row_of, n_rows=len(artists))
            )
            if read is not None:
                _keep(cache, key=key, items=read)
                return Listing(items=read[:limit], origin=CACHE)
    items = related_artists(loaded, row=row, limit=max(limit, RELATED_SIZE))
    top = ranked(loaded, items[:RELATED_SIZE], entity="artists")
    # served from the bundle all the same; kept in memory only if the store has it too
    if store is not None and _write(store, kind=RELATED, key=key, ranked=top, must=False):
        _keep(cache, key=key, items=items[:RELATED_SIZE])
    return Listing(items=items[:limit], origin=COMPUTED)


def related_key(loaded: LoadedBundle, *, row: int) -> ListKey:
    return ListKey(
        kind=RELATED, version=related_version(loaded.version), key=loaded.bundle.artists.id_of(row)
    )


def related_version(version: str) -> str:
    """The store version of related artists: they depend on the bundle alone (no variant, no
    list settings), and on the list encoding."""
    return f"{version}@f{LIST_FORMAT}"


def cached_related(cache: ListCache | None, *, key: ListKey, limit: int) -> Listing | None:
    """The related artists from memory, if `cache` has them and `limit` is within the list."""
    if cache is None or limit > RELATED_SIZE or (found := cache.get(key)) is None:
        return None
    return Listing(items=found.items(limit), origin=CACHE)


def _keep(cache: ListCache | None, *, key: ListKey, items: list[Item]) -> None:
    if cache is not None:
        cache.put(key, RankedRows.of_items(items))


def ranked(loaded: LoadedBundle, items: list[Item], *, entity: str = "tracks") -> Ranked:
    ents = loaded.bundle.entities[entity]
    return Ranked(
        ids=[ents.id_of(i.row) for i in items],
        scores=[i.score for i in items],
        rows=[i.row for i in items],
    )


def stored_rows(
    cached: Ranked, *, row_of: Callable[[str], int | None], n_rows: int
) -> RankedRows | None:
    """The stored list as rows (`stored_items`, without an object per item when the list
    holds its rows: a cold read of a list is on the request path)."""
    if cached.rows is None:
        items = stored_items(cached, row_of=row_of, n_rows=n_rows)
        return None if items is None else RankedRows.of_items(items)
    rows = np.asarray(cached.rows, dtype=np.int32)
    if len(rows) and not (int(rows.min()) >= 0 and int(rows.max()) < n_rows):
        log.warning("ignoring a stored list with rows outside the bundle's %d", n_rows)
        return None
    return RankedRows(rows=rows, scores=np.asarray(cached.scores, dtype=np.float32))


def stored_items(
    cached: Ranked, *, row_of: Callable[[str], int | None], n_rows: int
) -> list[Item] | None:
    """The stored list as items; None (a miss) for rows outside the bundle, which only a
    damaged row can hold."""
    if cached.rows is not None:  # rows of the list's own bundle version: no id lookups
        if cached.rows and not 0 <= min(cached.rows) <= max(cached.rows) < n_rows:
            log.warning("ignoring a stored list with rows outside the bundle's %d", n_rows)
            return None
        return [
            Item(row=r, score=float(s)) for r, s in zip(cached.rows, cached.scores, strict=True)
        ]
    out = []
    for external, score in zip(cached.ids, cached.scores, strict=True):
        r = row_of(external)
        if r is not None:  # the version key makes a miss impossible unless the bundle was edited
            out.append(Item(row=int(r), score=float(score)))
    return out
