"""One request at a time per station in a worker, each waiting a bounded time for its turn.

Requests that change a station (next tracks, feedback) read it, change it and write it back
with a conditional write on its revision. Many at once on one station would mostly lose that
race and retry, each holding a thread of the worker, and be answered after minutes: here they
wait their turn on the event loop instead, and one that has not had it within
SEGUE_STATION_BUSY_SECONDS gives up with a 409 and Retry-After. A request whose client went away
while it waited is dropped before it does any work. (Between workers, the revision still
decides, retried for the same bounded time.)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from service.errors import ClientGone
from service.stations import StationBusy


@dataclass
class _Turns:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0  # requests holding or waiting for the lock


class StationTurns:
    """Per station id, an asyncio lock that exists while someone holds or waits for it."""

    def __init__(self, *, wait_seconds: float) -> None:
        self.wait_seconds = wait_seconds
        self._turns: dict[str, _Turns] = {}

    def waiting(self, station_id: str) -> int:
        turns = self._turns.get(station_id)
        return 0 if turns is None else turns.users

    @contextlib.asynccontextmanager
    async def turn(
        self, station_id: str, *, gone: Callable[[], Awaitable[bool]]
    ) -> AsyncIterator[None]:
        """Holds the station's turn; StationBusy after `wait_seconds` without it, ClientGone
        when it had to wait and `gone()` says the client left meanwhile."""
        turns = self._turns.setdefault(station_id, _Turns())
        turns.users += 1
        try:
            waited = turns.lock.locked()
            try:
                async with asyncio.timeout(self.wait_seconds):
                    await turns.lock.acquire()
            except TimeoutError:
                raise StationBusy(
                    f"station {station_id!r} is busy ({turns.users - 1} requests ahead); try again"
                ) from None
            try:
                if waited and await gone():
                    raise ClientGone("the client disconnected while its request waited")
                yield
            finally:
                turns.lock.release()
        finally:
            turns.users -= 1
            if turns.users == 0:
                del self._turns[station_id]
