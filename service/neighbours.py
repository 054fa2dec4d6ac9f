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

import contextlib
import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from indexes.ensemble import ENSEMBLE, Scorer
from service.bundle_holder import LoadedBundle
from service.list_cache import ListCache, ListKey, RankedRows
from service.recommend import Item, cap_per_artist, related_artists
from service.store.base import LIST_FORMAT, RADIO, RELATED, Ranked, Store, StoreUnavailable

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

    def digest(self) -> str:
        """A short hash of the shape (and of the list encoding): part of the lists' store key."""
        return _digest(self.size, self.artist_cap, self.per_source)


@functools.lru_cache(maxsize=64)  # asked for on every request, of a handful of shapes
def _digest(size: int, artist_cap: int, per_source: int) -> str:
    text = f"size={size};cap={artist_cap};per_source={per_source};f{LIST_FORMAT}"
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
) -> tuple[RankedRows, str]:
    """The radio list of `row` and its origin (CACHE or COMPUTED): from `cache` (unless the
    caller has just `looked_up` it there), else from the store, else computed and written back
    (without a store: computed, not written). Whatever is read or computed goes into `cache`.
    StoreUnavailable from the store is raised."""
    key = radio_key(loaded, row=row, shape=shape)
    found = cache.get(key) if cache is not None and not looked_up else None
    if found is not None:
        return found, CACHE
    cached = None if store is None else store.get(kind=RADIO, version=key.version, key=key.key)
    origin = CACHE if cached is not None else COMPUTED
    if cached is not None:
        items = _rows(cached, row_of=loaded.bundle.tracks.row_of)
    else:
        items = compute_radio(
            loaded, row=row, size=shape.size, artist_cap=shape.artist_cap,
            per_source=shape.per_source,
        )  # fmt: skip
        if store is not None:
            store.put_many(
                kind=RADIO, version=key.version, items=[(key.key, ranked(loaded, items))]
            )
    found = RankedRows.of_items(items)
    if cache is not None:
        cache.put(key, found)
    return found, origin


def radio_list_anyway(
    loaded: LoadedBundle, store: Store | None, *, row: int, shape: RadioShape, cache: ListCache,
    looked_up: bool = False,
) -> RankedRows:  # fmt: skip
    """`radio_list` for an endpoint that does without the store: when it fails, the list is
    computed from the bundle (a store from `StoreMonitor` has reported the failure)."""
    try:
        return radio_list(loaded, store, row=row, shape=shape, cache=cache, looked_up=looked_up)[0]
    except StoreUnavailable:
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
            if cached is not None:
                items = _rows(cached, row_of=artists.row_of)
                _keep(cache, key=key, items=items)
                return Listing(items=items[:limit], origin=CACHE)
    items = related_artists(loaded, row=row, limit=max(limit, RELATED_SIZE))
    _keep(cache, key=key, items=items[:RELATED_SIZE])
    if store is not None:
        with contextlib.suppress(StoreUnavailable):  # served from the bundle all the same
            store.put_many(
                kind=RELATED,
                version=key.version,
                items=[(key.key, ranked(loaded, items[:RELATED_SIZE], entity="artists"))],
            )
    return Listing(items=items[:limit], origin=COMPUTED)


def related_key(loaded: LoadedBundle, *, row: int) -> ListKey:
    # related artists depend on the bundle alone: no variant, no list settings
    return ListKey(kind=RELATED, version=loaded.version, key=loaded.bundle.artists.id_of(row))


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


def _rows(cached: Ranked, *, row_of: Callable[[str], int | None]) -> list[Item]:
    if cached.rows is not None:  # rows of the list's own bundle version: no id lookups
        return [
            Item(row=r, score=float(s)) for r, s in zip(cached.rows, cached.scores, strict=True)
        ]
    out = []
    for external, score in zip(cached.ids, cached.scores, strict=True):
        r = row_of(external)
        if r is not None:  # the version key makes a miss impossible unless the bundle was edited
            out.append(Item(row=int(r), score=float(score)))
    return out
