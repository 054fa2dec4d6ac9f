"""One contract, two stores: every test here runs against SQLite and against a real Cassandra."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from service.settings import Settings
from service.store.base import (
    RADIO,
    RELATED,
    EventRecord,
    Ranked,
    Store,
    StoredStation,
    StoreOptions,
    StoreUnavailable,
    parse_store_url,
)
from service.store.factory import open_store
from service.store.sqlite import SqliteStore
from tests.service import cassandra_server as cassandra
from tests.waiting import wait_until

DEFAULTS = Settings.defaults().store_options()


@pytest.fixture(params=["sqlite", "cassandra"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    keyspace = cassandra.new_keyspace()
    yield cassandra.url(keyspace)
    cassandra.drop_keyspace(keyspace)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = open_store(store_url)
    yield s
    s.close()


def open_on_clock(url: str, *, options: StoreOptions, clock: Callable[[], float]) -> Store:
    """SQLite counts expiry on the injected clock; Cassandra's TTL runs on the server's clock."""
    parsed = parse_store_url(url)
    if parsed.scheme == "sqlite":
        return SqliteStore(path=Path(parsed.path), options=options, clock=clock)
    return open_store(url, options=options)


def lists(n: int, *, prefix: str = "t") -> list[tuple[str, Ranked]]:
    return [
        (f"{prefix}{i}", Ranked(ids=[f"{prefix}{i + j + 1}" for j in range(5)],
                                scores=[1.0 - j / 10 for j in range(5)]))
        for i in range(n)
    ]  # fmt: skip


def test_a_list_round_trips_in_order(store: Store) -> None:
    store.ping()
    assert store.get(kind=RADIO, version="v1", key="t0") is None
    store.put_many(kind=RADIO, version="v1", items=lists(3))
    got = store.get(kind=RADIO, version="v1", key="t1")
    assert got is not None
    assert got.ids == ["t2", "t3", "t4", "t5", "t6"]
    assert got.scores == pytest.approx([1.0, 0.9, 0.8, 0.7, 0.6], abs=1e-6)


def test_many_lists_in_one_read(store: Store) -> None:
    store.put_many(kind=RADIO, version="v1", items=lists(700))
    store.put_many(kind=RADIO, version="v2", items=lists(3, prefix="x"))
    keys = [f"t{i}" for i in range(0, 700, 2)] + ["t4", "nope", "x0"]
    got = store.get_many(kind=RADIO, version="v1", keys=keys)
    assert set(got) == {f"t{i}" for i in range(0, 700, 2)}  # more than one IN chunk
    assert got["t4"] == store.get(kind=RADIO, version="v1", key="t4")
    assert got["t4"].ids == ["t5", "t6", "t7", "t8", "t9"]
    assert store.get_many(kind=RADIO, version="v1", keys=[]) == {}
    assert store.get_many(kind=RELATED, version="v1", keys=["t4"]) == {}


def test_a_read_on_the_event_loop_is_the_read_on_a_thread(store: Store) -> None:
    store.put_many(kind=RADIO, version="v1", items=lists(30))
    store.put_many(kind=RELATED, version="v1", items=lists(2, prefix="a"))

    async def read_all() -> list[Ranked | None]:
        reads = [store.get_async(kind=RADIO, version="v1", key=f"t{i}") for i in range(31)]
        reads.append(store.get_async(kind=RELATED, version="v1", key="a1"))
        return await asyncio.gather(*reads)  # concurrently, on one loop

    got = asyncio.run(read_all())
    assert got[:30] == [store.get(kind=RADIO, version="v1", key=f"t{i}") for i in range(30)]
    assert got[30] is None and got[31] == store.get(kind=RELATED, version="v1", key="a1")
    assert got[31] is not None and got[0] is not None
    with pytest.raises(ValueError, match="unknown list kind"):
        asyncio.run(store.get_async(kind="nope", version="v1", key="t0"))
    store.close()
    with pytest.raises(StoreUnavailable):
        asyncio.run(store.get_async(kind=RADIO, version="v1", key="t0"))


def test_versions_and_kinds_never_mix(store: Store) -> None:
    store.put_many(kind=RADIO, version="v1", items=lists(2))
    assert store.get(kind=RADIO, version="v2", key="t0") is None
    assert store.get(kind=RELATED, version="v1", key="t0") is None
    store.put_many(kind=RELATED, version="v2", items=[("t0", Ranked(ids=["a"], scores=[0.5]))])
    assert store.get(kind=RELATED, version="v2", key="t0") == Ranked(ids=["a"], scores=[0.5])
    radio = store.get(kind=RADIO, version="v1", key="t0")
    assert radio is not None and radio.ids[0] == "t1"


def test_a_write_replaces_the_list(store: Store) -> None:
    store.put_many(kind=RADIO, version="v1", items=lists(1))
    store.put_many(kind=RADIO, version="v1", items=[("t0", Ranked(ids=["x"], scores=[0.25]))])
    assert store.get(kind=RADIO, version="v1", key="t0") == Ranked(ids=["x"], scores=[0.25])


def test_bulk_writes(store: Store) -> None:
    store.put_many(kind=RADIO, version="v1", items=lists(400))
    for i in (0, 123, 399):
        got = store.get(kind=RADIO, version="v1", key=f"t{i}")
        assert got is not None and got.ids[0] == f"t{i + 1}"
    store.put_many(kind=RADIO, version="v1", items=[])  # nothing to do, no error


def test_precompute_progress(store: Store) -> None:
    assert store.chunks_done(version="v1", task="radio") == set()
    store.mark_done(version="v1", task="radio", chunk=0, items=500)
    store.mark_done(version="v1", task="radio", chunk=7, items=12)
    store.mark_done(version="v1", task="radio", chunk=7, items=12)  # idempotent
    assert store.chunks_done(version="v1", task="radio") == {0, 7}
    assert store.chunks_done(version="v2", task="radio") == set()
    assert store.chunks_done(version="v1", task="related") == set()


def test_unknown_kind_is_a_bug_not_an_outage(store: Store) -> None:
    with pytest.raises(ValueError, match="unknown list kind"):
        store.get(kind="stations", version="v1", key="x")


def test_the_schema_step_is_idempotent(store_url: str) -> None:
    first = open_store(store_url)
    first.put_many(kind=RADIO, version="v1", items=lists(1))
    first.close()
    second = open_store(store_url)  # applies the schema again: nothing changes, nothing is lost
    try:
        assert second.get(kind=RADIO, version="v1", key="t0") is not None
    finally:
        second.close()


def test_a_closed_store_is_unavailable(store: Store) -> None:
    store.ping()
    store.close()
    with pytest.raises(StoreUnavailable):
        store.get(kind=RADIO, version="v1", key="t0")


def test_cassandra_lists_get_the_ttl_from_settings() -> None:
    keyspace = cassandra.new_keyspace()
    s = open_store(cassandra.url(keyspace), options=replace(DEFAULTS, ttl_seconds=3600))
    try:
        s.put_many(kind=RADIO, version="v1", items=lists(1))
        cluster = cassandra.cluster()
        try:
            row = (
                cluster.connect()
                .execute(
                    f"SELECT TTL(ranked) AS ttl FROM {keyspace}.radio_neighbours "
                    "WHERE bundle_version = 'v1' AND track_id = 't0'"
                )
                .one()
            )
        finally:
            cluster.shutdown()
        ttls = row.ttl if isinstance(row.ttl, list) else [row.ttl]  # one per list element
        assert ttls and all(3500 < t <= 3600 for t in ttls)
    finally:
        s.close()
        cassandra.drop_keyspace(keyspace)


def test_an_unreachable_cassandra_fails_fast_and_clearly() -> None:
    with socket.socket() as sock:  # a port where nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    s = open_store(
        f"cassandra://127.0.0.1:{port}/segue", options=replace(DEFAULTS, connect_timeout_seconds=1)
    )
    try:
        start = time.monotonic()
        with pytest.raises(StoreUnavailable, match=f"127.0.0.1:{port}"):
            s.ping()
        with pytest.raises(StoreUnavailable, match="next attempt"):  # no new attempt at once
            s.get(kind=RADIO, version="v1", key="t0")
        assert time.monotonic() - start < 10
    finally:
        s.close()


def test_an_unusable_sqlite_file_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()  # a directory where the database file should be
    with pytest.raises(StoreUnavailable, match=r"dir\.db"):
        open_store(f"sqlite:///{tmp_path / 'dir.db'}")


# --- stations and the event log -----------------------------------------------------------------


def test_a_station_is_created_once_read_and_deleted(store: Store) -> None:
    assert store.get_station(station_id="s1") is None
    assert store.create_station(station_id="s1", state='{"a": 1}')
    assert not store.create_station(station_id="s1", state='{"a": 2}')  # the id is taken
    got = store.get_station(station_id="s1")
    assert got == StoredStation(state='{"a": 1}', revision=1)
    assert store.delete_station(station_id="s1")
    assert store.get_station(station_id="s1") is None
    assert not store.delete_station(station_id="s1")


def test_station_updates_are_conditional_on_the_revision(store: Store) -> None:
    store.create_station(station_id="s2", state="r1")
    assert store.update_station(station_id="s2", state="r2", expected_revision=1)
    assert not store.update_station(station_id="s2", state="lost", expected_revision=1)  # stale
    assert store.get_station(station_id="s2") == StoredStation(state="r2", revision=2)
    assert store.update_station(station_id="s2", state="r3", expected_revision=2)
    assert not store.update_station(station_id="nope", state="x", expected_revision=1)
    assert store.get_station(station_id="s2") == StoredStation(state="r3", revision=3)


@pytest.mark.parametrize("timeout", [2.0, 0.05])
def test_contended_station_updates_report_exactly_what_was_applied(
    store_url: str, timeout: float
) -> None:
    """Threads race conditional writes on one station. A write reported applied is on the row
    and one reported not applied is not. Cassandra may time a lightweight transaction out under
    contention (forced here by a short timeout): the store then reads who won, not guesses."""
    if store_url.startswith("sqlite") and timeout < 1:
        pytest.skip("SQLite's timeout is its lock wait: a short one only makes writes fail")
    steady = open_store(store_url)  # set up and check with the default timeout
    store = open_store(store_url, options=replace(DEFAULTS, timeout_seconds=timeout))
    assert steady.create_station(station_id="hot", state="start")
    won: dict[int, str] = {}  # expected revision -> state of the write reported applied there
    unknown: list[str] = []
    lock = threading.Lock()

    def racer(n: int) -> None:
        for i in range(15):
            try:
                current = store.get_station(station_id="hot")
            except StoreUnavailable as e:  # a read timed out (50 ms): nothing to settle
                assert not e.down
                continue
            assert current is not None
            state = f"w{n}-{i}"
            try:
                applied = store.update_station(
                    station_id="hot", state=state, expected_revision=current.revision
                )
            except StoreUnavailable as e:  # a timed-out write whose outcome could not be read
                assert not e.down
                with lock:
                    unknown.append(state)
                continue
            if applied:
                with lock:
                    assert current.revision not in won, "two writes won one revision"
                    won[current.revision] = state

    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(racer, range(8)))  # re-raises a racer's failure
        final = steady.get_station(station_id="hot")
    finally:
        store.close()
        steady.close()
    print(f"{len(won)} applied, {len(unknown)} unknown, revision {final and final.revision}")
    assert final is not None
    assert len(won) <= final.revision - 1 <= len(won) + len(unknown)
    if not unknown:
        assert sorted(won) == list(range(1, final.revision))
        assert final.state == won[final.revision - 1]


def test_the_event_log_is_idempotent_by_event_id(store: Store) -> None:
    def event(station: str, event_id: str, at: float) -> EventRecord:
        return EventRecord(station_id=station, event_id=event_id, user_id="u1", variant="control",
                           bundle_version="v1", track_id="t1", kind="skip", at=at)  # fmt: skip

    store.append_events(events=[event("s1", "e1", 1000.5), event("s1", "e2", 1001.0)])
    store.append_events(events=[event("s1", "e1", 1000.5), event("s2", "e1", 1002.0)])
    store.append_events(events=[])
    got = sorted(store.events(), key=lambda e: (e.station_id, e.event_id))
    assert [(e.station_id, e.event_id) for e in got] == [("s1", "e1"), ("s1", "e2"), ("s2", "e1")]
    assert got[0] == event("s1", "e1", 1000.5)


def test_events_go_to_the_log_with_the_write_that_applies(store: Store) -> None:
    def event(event_id: str) -> EventRecord:
        return EventRecord(station_id="s1", event_id=event_id, user_id="u1", variant="control",
                           bundle_version="v1", track_id="t1", kind="skip", at=1000.0)  # fmt: skip

    assert store.create_station(station_id="s1", state="{}")
    assert store.update_station(station_id="s1", state="{}", expected_revision=1,
                                events=[event("e1")])  # fmt: skip
    assert not store.update_station(station_id="s1", state="{}", expected_revision=1,
                                    events=[event("e2")])  # fmt: skip
    assert [e.event_id for e in store.events()] == ["e1"]  # not the one of the lost write


def test_a_station_expires_after_its_ttl(store_url: str) -> None:
    now = [1_000_000.0]
    s = open_on_clock(
        store_url, options=replace(DEFAULTS, station_ttl_seconds=1), clock=lambda: now[0]
    )
    try:
        s.create_station(station_id="short", state="x")
        assert s.get_station(station_id="short") is not None
        now[0] += 2.2
        wait_until(lambda: s.get_station(station_id="short") is None, timeout=15, every=0.2,
                   what="the station expired")  # fmt: skip
        assert s.get_station(station_id="short") is None
        assert s.create_station(station_id="short", state="again")  # the id is free again
    finally:
        s.close()


def test_rows_travel_with_a_list(store: Store) -> None:
    with_rows = Ranked(ids=["t7", "t3"], scores=[0.5, 0.25], rows=[7, 3])
    store.put_many(kind=RADIO, version="v1", items=[("t1", with_rows)])
    assert store.get(kind=RADIO, version="v1", key="t1") == with_rows
    with pytest.raises(ValueError, match="rows"):
        Ranked(ids=["a"], scores=[1.0], rows=[1, 2])
