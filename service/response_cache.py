"""A worker's bounded store of rendered answers of lists served from memory.

A warm list request spent most of its own time turning the same list into the same JSON again
(loadtest/README.md, issue 14's figures). The answer is a function of its key alone: the list's
key (`ListKey`: bundle version, variant, list settings, id), the endpoint and its parameters,
and the list never changes under its key, so a rendered answer is served as is until it is
overwritten.

The answers live in one ring buffer of `max_bytes`, written in turn, the oldest overwritten
first. One `bytes` object per kept answer, freed when it fell out, grew a worker's heap by about
3x the answers' size (fragmentation, measured in loadtest/README.md); the ring is the budget.
Used from the event loop only (the list routes' own code runs there).
"""

from __future__ import annotations

import mmap
from collections import deque
from collections.abc import Callable, Hashable


class ResponseCache:
    """Rendered answers in a ring of `max_bytes` (0: keeps none); an answer bigger than the ring
    is not kept. `on_read(hit)` is told of every `get`."""

    def __init__(self, *, max_bytes: int, on_read: Callable[[bool], None] | None = None) -> None:
        self.max_bytes = max(0, max_bytes)
        self.on_read = on_read
        # anonymous zero pages: a worker's memory grows as the ring is written, up to max_bytes
        self._ring: mmap.mmap | bytearray = bytearray()
        if self.max_bytes:
            self._ring = mmap.mmap(-1, self.max_bytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self._where: dict[Hashable, tuple[int, int]] = {}  # key -> (start, length)
        self._written: deque[tuple[Hashable, int, int]] = deque()  # oldest first
        self._head = 0  # where the next answer goes

    def get(self, key: Hashable) -> bytes | None:
        at = self._where.get(key)
        found = None if at is None else bytes(memoryview(self._ring)[at[0] : at[0] + at[1]])
        if self.on_read is not None:
            self.on_read(found is not None)
        return found

    def put(self, key: Hashable, body: bytes) -> None:
        n = len(body)
        if n == 0 or n > self.max_bytes or key in self._where:
            return  # an answer never changes under its key: one copy is enough
        if self._head + n > self.max_bytes:  # wrap: the ring's end is given up for this lap
            self._drop_while(lambda start, _: start >= self._head)
            self._head = 0
        end = self._head + n
        self._drop_while(lambda start, length: start < end and start + length > self._head)
        self._ring[self._head : end] = body
        self._where[key] = (self._head, n)
        self._written.append((key, self._head, n))
        self._head = end

    def _drop_while(self, overlaps: Callable[[int, int], bool]) -> None:
        """Drops the oldest answers while `overlaps(start, length)` holds for the oldest: the
        answers ahead of the head are the oldest, in the order of their place in the ring."""
        while self._written and overlaps(self._written[0][1], self._written[0][2]):
            key, _, _ = self._written.popleft()
            del self._where[key]

    @property
    def size(self) -> int:
        """Bytes of the answers kept."""
        return sum(length for _, length in self._where.values())

    def __len__(self) -> int:
        return len(self._where)
