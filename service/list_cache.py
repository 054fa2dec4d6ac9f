"""A worker's bounded LRU of decoded lists: radio neighbours and related artists.

A list never changes once computed for one key: the key holds everything that shapes it (the
list's kind, the store version it is kept under, which carries the bundle version, the variant
and the hash of the list settings, and the id it is the list of). So a list read once from the
store, or computed, is served from memory until it falls out of the LRU; nothing is invalidated.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from service.recommend import Item


@dataclass(frozen=True)
class ListKey:
    kind: str  # RADIO or RELATED
    version: str  # the store version the list is kept under (`neighbours.list_version`)
    key: str  # the id of the track or artist whose list it is


@dataclass(frozen=True)
class RankedRows:
    """A list as rows of its bundle version and their scores, best first."""

    rows: NDArray[np.int32]
    scores: NDArray[np.float32]

    @classmethod
    def of_items(cls, items: list[Item]) -> RankedRows:
        return cls(
            rows=np.fromiter((i.row for i in items), dtype=np.int32, count=len(items)),
            scores=np.fromiter((i.score for i in items), dtype=np.float32, count=len(items)),
        )

    def items(self, limit: int | None = None) -> list[Item]:
        rows, scores = self.rows[:limit].tolist(), self.scores[:limit].tolist()
        return [Item(row=r, score=s) for r, s in zip(rows, scores, strict=True)]

    def __len__(self) -> int:
        return len(self.rows)


class ListCache:
    """At most `max_items` lists, the least recently read dropped first (0: keeps none).

    `on_read(kind, hit)` is told of every `get` (the service counts them in Prometheus). Safe
    to use from the event loop and the thread pool at once."""

    def __init__(
        self, *, max_items: int, on_read: Callable[[str, bool], None] | None = None
    ) -> None:
        self.max_items = max_items
        self.on_read = on_read
        self._lists: OrderedDict[ListKey, RankedRows] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: ListKey) -> RankedRows | None:
        with self._lock:
            found = self._lists.get(key)
            if found is not None:
                self._lists.move_to_end(key)
        if self.on_read is not None:
            self.on_read(key.kind, found is not None)
        return found

    def put(self, key: ListKey, ranked: RankedRows) -> None:
        if self.max_items <= 0:
            return
        with self._lock:
            self._lists[key] = ranked
            self._lists.move_to_end(key)
            while len(self._lists) > self.max_items:
                self._lists.popitem(last=False)

    def __len__(self) -> int:
        return len(self._lists)
