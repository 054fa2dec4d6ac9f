"""The worker's LRU of decoded lists, and the keys lists are kept under (in memory and in the
store): everything that shapes a list is in them, so changed settings never serve older lists."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from indexes.pipeline import BuildResult
from service import neighbours
from service.bundle_holder import LoadedBundle, load
from service.list_cache import ListCache, ListKey, RankedRows
from service.neighbours import CACHE, COMPUTED, RadioShape, list_version
from service.recommend import Item
from service.store.base import RADIO, Ranked
from service.store.sqlite import SqliteStore

SHAPE = RadioShape(size=60, artist_cap=3, per_source=100)


@pytest.fixture(scope="module")
def loaded(tiny_build: BuildResult) -> Iterator[LoadedBundle]:
    lb = load(tiny_build.path, verify_checksums=False, candidates_per_source=50, search_k=None)
    yield lb
    lb.bundle.close()


class Counting(SqliteStore):
    """A store that counts its list reads."""

    def __init__(self, path: Path) -> None:
        super().__init__(path=path)
        self.gets = 0

    def get(self, **kwargs: Any) -> Ranked | None:
        self.gets += 1
        return super().get(**kwargs)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Counting]:
    s = Counting(tmp_path / "s.db")
    yield s
    s.close()


def lst(*rows: int) -> RankedRows:
    return RankedRows(
        rows=np.asarray(rows, dtype=np.int32),
        scores=np.linspace(1, 0, len(rows), dtype=np.float32),
    )


def key(name: str) -> ListKey:
    return ListKey(kind=RADIO, version="v1", key=name)


def test_the_least_recently_read_list_goes_first() -> None:
    reads: list[tuple[str, bool]] = []
    cache = ListCache(max_items=2, on_read=lambda kind, hit: reads.append((kind, hit)))
    cache.put(key("a"), lst(1, 2))
    cache.put(key("b"), lst(3))
    assert cache.get(key("a")) is not None  # a is now the most recent
    cache.put(key("c"), lst(4))
    assert len(cache) == 2
    assert cache.get(key("b")) is None
    got = cache.get(key("a"))
    assert got is not None and got.rows.tolist() == [1, 2]
    assert cache.get(key("c")) is not None
    assert reads == [("radio", True), ("radio", False), ("radio", True), ("radio", True)]


def test_a_cache_of_size_zero_keeps_nothing() -> None:
    cache = ListCache(max_items=0)
    cache.put(key("a"), lst(1))
    assert cache.get(key("a")) is None and len(cache) == 0


def test_keys_differ_in_every_part() -> None:
    cache = ListCache(max_items=10)
    cache.put(ListKey(kind=RADIO, version="v1", key="t"), lst(1))
    assert cache.get(ListKey(kind="related", version="v1", key="t")) is None
    assert cache.get(ListKey(kind=RADIO, version="v2", key="t")) is None
    assert cache.get(ListKey(kind=RADIO, version="v1", key="u")) is None


def test_items_come_back_in_order_and_cut_at_the_limit() -> None:
    ranked = RankedRows.of_items([Item(row=5, score=0.5), Item(row=2, score=0.25)])
    assert ranked.items() == [Item(row=5, score=0.5), Item(row=2, score=0.25)]
    assert ranked.items(1) == [Item(row=5, score=0.5)]


def test_every_setting_that_shapes_a_list_changes_its_version() -> None:
    shapes = [
        SHAPE,
        RadioShape(size=61, artist_cap=3, per_source=100),
        RadioShape(size=60, artist_cap=4, per_source=100),
        RadioShape(size=60, artist_cap=3, per_source=101),
    ]
    versions = {list_version("v1", shape=s) for s in shapes}
    assert len(versions) == len(shapes)
    assert list_version("v1", shape=SHAPE) == list_version("v1", shape=SHAPE)
    assert list_version("v1", shape=SHAPE) != list_version("v2", shape=SHAPE)


def test_a_list_read_once_is_then_served_from_memory(loaded: LoadedBundle, store: Counting) -> None:
    cache = ListCache(max_items=100)
    first, origin = neighbours.radio_list(loaded, store, row=5, shape=SHAPE, cache=cache)
    assert origin == COMPUTED and store.gets == 1
    again, origin = neighbours.radio_list(loaded, store, row=5, shape=SHAPE, cache=cache)
    assert origin == CACHE and store.gets == 1  # no second store read
    assert again.rows.tolist() == first.rows.tolist()
    # another worker (a cache of its own) reads the list written back
    other = ListCache(max_items=100)
    from_store, origin = neighbours.radio_list(loaded, store, row=5, shape=SHAPE, cache=other)
    assert origin == CACHE and store.gets == 2
    assert from_store.rows.tolist() == first.rows.tolist()


def test_changed_list_settings_never_serve_older_lists(
    loaded: LoadedBundle, store: Counting
) -> None:
    """A change of SEGUE_RADIO_ARTIST_CAP (or size, or candidates) computes new lists, though
    the store and the worker's memory hold the older ones."""
    cache = ListCache(max_items=100)
    wide = neighbours.radio_neighbours(loaded, store, row=7, size=60, artist_cap=30,
                                       per_source=100, cache=cache)  # fmt: skip
    narrow = neighbours.radio_neighbours(loaded, store, row=7, size=60, artist_cap=1,
                                         per_source=100, cache=cache)  # fmt: skip
    assert narrow.origin == COMPUTED
    assert narrow.items == neighbours.compute_radio(loaded, row=7, size=60, artist_cap=1,
                                                    per_source=100)  # fmt: skip
    assert narrow.items != wide.items
    # and both stay in the store, each under its own settings
    fresh = ListCache(max_items=100)
    for cap, want in ((30, wide), (1, narrow)):
        got = neighbours.radio_neighbours(loaded, store, row=7, size=60, artist_cap=cap,
                                          per_source=100, cache=fresh)  # fmt: skip
        assert got.origin == CACHE and [i.row for i in got.items] == [i.row for i in want.items]


def test_related_artists_are_served_from_memory(loaded: LoadedBundle, store: Counting) -> None:
    cache = ListCache(max_items=100)
    first = neighbours.related(loaded, store, row=3, limit=7, cache=cache)
    assert first.origin == COMPUTED and store.gets == 1
    again = neighbours.related(loaded, store, row=3, limit=5, cache=cache)
    assert again.origin == CACHE and again.items == first.items[:5] and store.gets == 1
    # a limit beyond the kept list is computed, as without the cache
    more = neighbours.related(loaded, store, row=3, limit=neighbours.RELATED_SIZE + 1, cache=cache)
    assert more.origin == COMPUTED and len(more.items) == neighbours.RELATED_SIZE + 1
