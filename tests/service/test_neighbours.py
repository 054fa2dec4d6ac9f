"""Radio neighbours and related artists read through the store, in plain Python on a small bundle."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from indexes.pipeline import BuildResult
from service import neighbours
from service.bundle_holder import LoadedBundle, load
from service.neighbours import CACHE, COMPUTED, RELATED_SIZE, Listing
from service.recommend import related_artists
from service.store.base import RADIO, RELATED, Ranked, StoreUnavailable
from service.store.sqlite import SqliteStore

RADIO_ARGS: dict[str, Any] = {"size": 60, "artist_cap": 3, "per_source": 100}


def radio_version(version: str) -> str:
    """The store version of the radio lists RADIO_ARGS make (the bundle's and the settings')."""
    return neighbours.list_version(version, shape=neighbours.RadioShape(**RADIO_ARGS))


@pytest.fixture(scope="module")
def loaded(tiny_build: BuildResult) -> Iterator[LoadedBundle]:
    lb = load(tiny_build.path, verify_checksums=False, candidates_per_source=50, search_k=None)
    yield lb
    lb.bundle.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(path=tmp_path / "s.db")
    yield s
    s.close()


class Failing(SqliteStore):
    """A store whose reads (or writes) fail as a store that is down does."""

    def __init__(self, path: Path, *, reads: bool, writes: bool) -> None:
        super().__init__(path=path)
        self.fail_reads, self.fail_writes, self.puts = reads, writes, 0

    def get(self, **kwargs: Any) -> Ranked | None:
        if self.fail_reads:
            raise StoreUnavailable("down")
        return super().get(**kwargs)

    def put_many(self, **kwargs: Any) -> None:
        self.puts += 1
        if self.fail_writes:
            raise StoreUnavailable("down")
        super().put_many(**kwargs)


def rows(listing: Listing) -> list[int]:
    return [i.row for i in listing.items]


def test_radio_neighbours_are_computed_on_a_miss_then_read_back(
    loaded: LoadedBundle, store: SqliteStore
) -> None:
    first = neighbours.radio_neighbours(loaded, store, row=5, **RADIO_ARGS)
    assert first.origin == COMPUTED and 0 < len(first.items) <= 60
    assert 5 not in rows(first) and len(set(rows(first))) == len(first.items)
    artist = loaded.bundle.tracks.artist
    assert artist is not None
    assert max(Counter(int(artist[r]) for r in rows(first)).values()) <= 3
    scores = [i.score for i in first.items]
    assert scores == sorted(scores, reverse=True)
    assert first.items == neighbours.compute_radio(loaded, row=5, **RADIO_ARGS)

    again = neighbours.radio_neighbours(loaded, store, row=5, **RADIO_ARGS)
    assert again.origin == CACHE and rows(again) == rows(first)
    assert [i.score for i in again.items] == pytest.approx(scores, rel=1e-6)


def test_a_list_without_rows_is_read_back_by_id(loaded: LoadedBundle, store: SqliteStore) -> None:
    """A list stored without rows (as an older writer did) is mapped through the ids."""
    items = neighbours.compute_radio(loaded, row=9, **RADIO_ARGS)
    ranked = neighbours.ranked(loaded, items)
    key = loaded.bundle.tracks.id_of(9)
    store.put_many(kind=RADIO, version=radio_version(loaded.version),
                   items=[(key, Ranked(ids=ranked.ids, scores=ranked.scores))])  # fmt: skip
    listing = neighbours.radio_neighbours(loaded, store, row=9, **RADIO_ARGS)
    assert listing.origin == CACHE and rows(listing) == [i.row for i in items]


def test_radio_neighbours_need_the_store(loaded: LoadedBundle, tmp_path: Path) -> None:
    down = Failing(tmp_path / "s.db", reads=True, writes=True)
    try:
        with pytest.raises(StoreUnavailable):
            neighbours.radio_neighbours(loaded, down, row=5, **RADIO_ARGS)
    finally:
        down.close()


def test_related_artists_are_written_back_and_read_from_the_store(
    loaded: LoadedBundle, store: SqliteStore
) -> None:
    first = neighbours.related(loaded, store, row=3, limit=7)
    assert first.origin == COMPUTED and len(first.items) == 7 and 3 not in rows(first)
    assert first.items == related_artists(loaded, row=3, limit=RELATED_SIZE)[:7]
    stored = store.get(
        kind=RELATED,
        version=neighbours.related_version(loaded.version),
        key=loaded.bundle.artists.id_of(3),
    )
    assert stored is not None and len(stored.ids) == RELATED_SIZE  # the whole list, not 7
    again = neighbours.related(loaded, store, row=3, limit=7)
    assert again.origin == CACHE and rows(again) == rows(first)
    more = neighbours.related(loaded, store, row=3, limit=RELATED_SIZE + 10)
    assert more.origin == COMPUTED and len(more.items) == RELATED_SIZE + 10  # beyond the list
    assert rows(more)[:7] == rows(first)


def test_related_artists_do_without_the_store(loaded: LoadedBundle, tmp_path: Path) -> None:
    want = rows(neighbours.related(loaded, None, row=4, limit=10))
    assert len(want) == 10
    unreadable = Failing(tmp_path / "a.db", reads=True, writes=False)
    unwritable = Failing(tmp_path / "b.db", reads=False, writes=True)
    try:
        failed_read = neighbours.related(loaded, unreadable, row=4, limit=10)
        assert failed_read.origin == COMPUTED and rows(failed_read) == want
        assert unreadable.puts == 0  # a store that failed is not written to
        failed_write = neighbours.related(loaded, unwritable, row=4, limit=10)
        assert failed_write.origin == COMPUTED and rows(failed_write) == want
        assert unwritable.puts == 1
    finally:
        unreadable.close()
        unwritable.close()


def test_lists_are_kept_per_bundle_version(loaded: LoadedBundle, store: SqliteStore) -> None:
    neighbours.radio_neighbours(loaded, store, row=11, **RADIO_ARGS)
    key = loaded.bundle.tracks.id_of(11)
    assert store.get(kind=RADIO, version=radio_version(loaded.version), key=key) is not None
    assert store.get(kind=RADIO, version=radio_version("another-version"), key=key) is None


def test_stored_rows_are_the_stored_items_as_arrays() -> None:
    """A stored list read straight into rows and scores: the same list `stored_items` gives,
    the ids used only when the list has no rows, and a row outside the bundle is a miss."""
    ids = {"a": 0, "b": 1, "c": 2}
    with_rows = Ranked(ids=["c", "a"], scores=[0.5, 0.25], rows=[2, 0])
    got = neighbours.stored_rows(with_rows, row_of=ids.get, n_rows=3)
    assert got is not None and got.rows.dtype == np.int32 and got.scores.dtype == np.float32
    assert got.items() == neighbours.stored_items(with_rows, row_of=ids.get, n_rows=3)
    by_id = neighbours.stored_rows(Ranked(ids=["b", "x", "a"], scores=[3.0, 2.0, 1.0]),
                                   row_of=ids.get, n_rows=3)  # fmt: skip
    assert by_id is not None and by_id.rows.tolist() == [1, 0] and by_id.scores.tolist() == [3, 1]
    outside = Ranked(ids=["c", "a"], scores=[0.5, 0.25], rows=[3, 0])
    assert neighbours.stored_rows(outside, row_of=ids.get, n_rows=3) is None
    empty = neighbours.stored_rows(Ranked(ids=[], scores=[], rows=[]), row_of=ids.get, n_rows=3)
    assert empty is not None and len(empty) == 0
