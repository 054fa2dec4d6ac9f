"""Station turns in a worker: one at a time, a bounded wait, a departed client's work dropped."""

from __future__ import annotations

import asyncio

import pytest

from service.errors import ClientGone
from service.station_turns import StationTurns
from service.stations import StationBusy


async def _never_gone() -> bool:
    return False


async def _gone() -> bool:
    return True


def test_one_at_a_time_then_busy_after_the_wait() -> None:
    async def scenario() -> list[str]:
        turns = StationTurns(wait_seconds=0.2)
        order: list[str] = []
        holding = asyncio.Event()

        async def first() -> None:
            async with turns.turn("s", gone=_never_gone):
                order.append("first in")
                holding.set()
                await asyncio.sleep(0.5)
                order.append("first out")

        async def second() -> None:
            await holding.wait()
            with pytest.raises(StationBusy, match=r"station 's' is busy \(1 requests ahead\)"):
                async with turns.turn("s", gone=_never_gone):
                    order.append("second in")  # never: the first holds it past the wait
            order.append("second gave up")

        async def other_station() -> None:
            await holding.wait()
            async with turns.turn("t", gone=_never_gone):
                order.append("other in")

        await asyncio.gather(first(), second(), other_station())
        assert turns.waiting("s") == 0 and turns.waiting("t") == 0  # nothing kept
        return order

    order = asyncio.run(scenario())
    assert order == ["first in", "other in", "second gave up", "first out"]


def test_the_next_one_gets_its_turn_within_the_wait() -> None:
    async def scenario() -> int:
        turns = StationTurns(wait_seconds=2.0)
        done = 0

        async def one() -> None:
            nonlocal done
            async with turns.turn("s", gone=_never_gone):
                await asyncio.sleep(0.01)
                done += 1

        await asyncio.gather(*(one() for _ in range(20)))
        return done

    assert asyncio.run(scenario()) == 20


def test_a_client_gone_while_it_waited_is_dropped() -> None:
    async def scenario() -> list[str]:
        turns = StationTurns(wait_seconds=2.0)
        ran: list[str] = []
        holding = asyncio.Event()

        async def first() -> None:
            async with turns.turn("s", gone=_gone):  # it did not wait: not asked
                ran.append("first")
                holding.set()
                await asyncio.sleep(0.05)

        async def departed() -> None:
            await holding.wait()
            with pytest.raises(ClientGone):
                async with turns.turn("s", gone=_gone):
                    ran.append("departed")  # never
            async with turns.turn("s", gone=_never_gone):  # the lock was given back
                ran.append("next")

        await asyncio.gather(first(), departed())
        return ran

    assert asyncio.run(scenario()) == ["first", "next"]
