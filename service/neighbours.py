"""Radio neighbours and related artists, read through the store: plain Python, no web framework.

A track's radio neighbours (the top 250 of the ensemble) are read from the store; on a miss they
are computed from the bundle, written back and served. Entries are keyed by bundle version, so two
versions never mix. Related artists come from the store when `segue precompute` (or an earlier
request) put them there, and from the bundle otherwise; they never need the store, so they keep
answering when it is down.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from indexes.ensemble import ENSEMBLE, Scorer
from service.bundle_holder import LoadedBundle
from service.recommend import Item, cap_per_artist, related_artists
from service.store.base import RADIO, RELATED, Ranked, Store, StoreUnavailable

RADIO_SIZE = 250  # radio neighbours kept per track
RELATED_SIZE = 20  # related artists kept per artist
CACHE, COMPUTED = "cache", "computed"


@dataclass(frozen=True)
class Listing:
    items: list[Item]
    origin: str  # CACHE or COMPUTED: where the list came from (the API calls it "source")


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
) -> Listing:
    """Read-through: the cached list when present; else compute, write back and return it.

    Raises StoreUnavailable when the store is down (the list lives in the store)."""
    tracks = loaded.bundle.tracks
    key = tracks.id_of(row)
    cached = store.get(kind=RADIO, version=loaded.version, key=key)
    if cached is not None:
        return Listing(items=_rows(cached, row_of=tracks.row_of), origin=CACHE)
    items = compute_radio(loaded, row=row, size=size, artist_cap=artist_cap, per_source=per_source)
    store.put_many(kind=RADIO, version=loaded.version, items=[(key, ranked(loaded, items))])
    return Listing(items=items, origin=COMPUTED)


def related(loaded: LoadedBundle, store: Store | None, *, row: int, limit: int) -> Listing:
    """Related artists from the store when it has them, else from the bundle (written back).

    Without a store (None) or when it fails, the list is computed from the bundle all the same
    (a store from `StoreMonitor` has reported the failure)."""
    artists = loaded.bundle.artists
    key = artists.id_of(row)
    if store is not None and limit <= RELATED_SIZE:
        try:
            cached = store.get(kind=RELATED, version=loaded.version, key=key)
        except StoreUnavailable:
            store = None  # nor is the list written back
        else:
            if cached is not None:
                return Listing(items=_rows(cached, row_of=artists.row_of)[:limit], origin=CACHE)
    items = related_artists(loaded, row=row, limit=max(limit, RELATED_SIZE))
    if store is not None:
        with contextlib.suppress(StoreUnavailable):  # served from the bundle all the same
            store.put_many(
                kind=RELATED,
                version=loaded.version,
                items=[(key, ranked(loaded, items[:RELATED_SIZE], entity="artists"))],
            )
    return Listing(items=items[:limit], origin=COMPUTED)


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
