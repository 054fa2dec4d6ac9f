"""The station logic (service/stations.py) in plain Python on the SQLite store: no HTTP.

The store's clock is injected, so a station's expiry is tested without waiting for it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from indexes.pipeline import BuildResult
from service import stations
from service.bundle_holder import LoadedBundle, load
from service.list_cache import ListCache
from service.radio import THUMBS_DOWN, THUMBS_UP, Queued, Station
from service.settings import Settings, StationConfig
from service.stations import StationBusy, StationNotFound
from service.store.base import EventRecord, Ranked
from service.store.sqlite import SqliteStore

DEFAULTS = Settings.defaults()
CONFIG = DEFAULTS.station_config()
TTL = 3600


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def loaded(tiny_build: BuildResult) -> Iterator[LoadedBundle]:
    lb = load(tiny_build.path, verify_checksums=False,
              candidates_per_source=DEFAULTS.candidates_per_source, search_k=None)  # fmt: skip
    yield lb
    lb.bundle.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[SqliteStore]:
    options = dataclasses.replace(DEFAULTS.store_options(), station_ttl_seconds=TTL)
    s = SqliteStore(path=tmp_path / "store.db", options=options, clock=clock)
    yield s
    s.close()


def seeds(loaded: LoadedBundle, *rows: int) -> list[str]:
    return [loaded.bundle.tracks.id_of(r) for r in rows]


def test_a_new_station_is_stored_at_revision_1(loaded: LoadedBundle, store: SqliteStore) -> None:
    station, revision = stations.create(loaded, store, user="u1", seeds=seeds(loaded, 3),
                                        config=CONFIG, seed=11)  # fmt: skip
    assert revision == 1 and station.version == loaded.version and station.seed == 11
    assert station.queue and not station.played
    got, got_revision = stations.get(store, station_id=station.id)
    assert got == station and got_revision == 1


def test_pulls_advance_the_station_and_never_repeat_a_track(
    loaded: LoadedBundle, store: SqliteStore
) -> None:
    seed = seeds(loaded, 5)
    station, _ = stations.create(loaded, store, user="u1", seeds=seed, config=CONFIG, seed=2)
    served: list[str] = []
    for _ in range(5):
        _, tracks = stations.next_tracks(loaded, store, station_id=station.id, n=8, config=CONFIG)
        assert len(tracks) == 8
        served += tracks
    assert len(set(served)) == len(served) and seed[0] not in served
    now, revision = stations.get(store, station_id=station.id)
    assert now.played == served and revision == 6


def test_feedback_is_applied_once_per_event_id(loaded: LoadedBundle, store: SqliteStore) -> None:
    station, _ = stations.create(loaded, store, user="u1", seeds=seeds(loaded, 7), config=CONFIG)
    _, (first, second) = stations.next_tracks(loaded, store, station_id=station.id, n=2,
                                              config=CONFIG)  # fmt: skip

    def send(event_id: str, kind: str, track: str) -> tuple[int, bool]:
        _, revision, applied = stations.feedback(loaded, store, station_id=station.id,
                                                 event_id=event_id, kind=kind, track=track,
                                                 config=CONFIG)  # fmt: skip
        return revision, applied

    assert send("e1", THUMBS_DOWN, first) == (3, True)
    assert send("e1", THUMBS_DOWN, first) == (3, False)  # a retry: nothing changes
    assert send("e2", THUMBS_UP, second) == (4, True)
    now, _ = stations.get(store, station_id=station.id)
    assert now.banned == [first] and now.liked == [second] and now.events == ["e1", "e2"]
    assert all(q.track != first for q in now.queue)
    logged = sorted((e.event_id, e.kind, e.track_id) for e in store.events())
    assert logged == [("e1", THUMBS_DOWN, first), ("e2", THUMBS_UP, second)]  # logged once each
    with pytest.raises(ValueError, match="unknown feedback"):
        send("e3", "shrug", second)


def test_an_artist_seed_stands_for_its_most_listened_tracks(loaded: LoadedBundle) -> None:
    tracks = loaded.bundle.tracks
    assert tracks.artist is not None
    artist = loaded.bundle.artists.id_of(int(tracks.artist[0]))
    got = stations.seed_tracks(loaded, tracks=[], artists=[artist, "no such artist"],
                               per_artist=CONFIG.seed_tracks_per_artist)  # fmt: skip
    assert 1 <= len(got) <= CONFIG.seed_tracks_per_artist
    rows = [tracks.row_of(t) for t in got]
    assert all(r is not None and loaded.bundle.artists.id_of(int(tracks.artist[r])) == artist
               for r in rows)  # fmt: skip
    listeners = [int(tracks.listeners[r]) for r in rows if r is not None]
    assert listeners == sorted(listeners, reverse=True)


def test_an_unknown_or_deleted_station_is_not_found(
    loaded: LoadedBundle, store: SqliteStore
) -> None:
    with pytest.raises(StationNotFound, match="'nope'"):
        stations.get(store, station_id="nope")
    with pytest.raises(StationNotFound):
        stations.next_tracks(loaded, store, station_id="nope", n=1, config=CONFIG)
    with pytest.raises(StationNotFound):
        stations.feedback(loaded, store, station_id="nope", event_id="e", kind=THUMBS_UP,
                          track=seeds(loaded, 1)[0], config=CONFIG)  # fmt: skip
    station, _ = stations.create(loaded, store, user="u1", seeds=seeds(loaded, 1), config=CONFIG)
    stations.delete(store, station_id=station.id)
    with pytest.raises(StationNotFound):
        stations.get(store, station_id=station.id)
    with pytest.raises(StationNotFound):
        stations.delete(store, station_id=station.id)


def test_a_station_expires_a_ttl_after_its_last_use(
    loaded: LoadedBundle, store: SqliteStore, clock: Clock
) -> None:
    station, _ = stations.create(loaded, store, user="u1", seeds=seeds(loaded, 2), config=CONFIG)
    clock.now += TTL - 1
    stations.next_tracks(loaded, store, station_id=station.id, n=1, config=CONFIG)  # a use
    clock.now += TTL - 1
    assert stations.get(store, station_id=station.id)[1] == 2  # still there
    clock.now += 2
    with pytest.raises(StationNotFound):
        stations.get(store, station_id=station.id)


class Contended(SqliteStore):
    """A store on which every conditional write loses (another writer is always first)."""

    def update_station(
        self, *, station_id: str, state: str, expected_revision: int,
        events: Sequence[EventRecord] = (),
    ) -> bool:  # fmt: skip
        return False

    def create_station(self, *, station_id: str, state: str) -> bool:
        return False


def test_a_station_that_keeps_changing_under_a_call_is_busy(
    loaded: LoadedBundle, store: SqliteStore, tmp_path: Path
) -> None:
    station, _ = stations.create(loaded, store, user="u1", seeds=seeds(loaded, 4), config=CONFIG)
    contended = Contended(path=store.path, options=store.options, clock=store.clock)
    few: StationConfig = dataclasses.replace(CONFIG, max_attempts=3)
    try:
        with pytest.raises(StationBusy, match="busy"):
            stations.next_tracks(loaded, contended, station_id=station.id, n=1, config=few)
        with pytest.raises(StationBusy, match="already taken"):
            stations.create(loaded, contended, user="u1", seeds=seeds(loaded, 4), config=few)
    finally:
        contended.close()
    assert stations.get(store, station_id=station.id)[1] == 1  # nothing was written


class CountingStore(SqliteStore):
    """The SQLite store, counting the radio lists asked of it."""

    reads = 0

    def get(self, *, kind: str, version: str, key: str) -> Ranked | None:
        self.reads += 1
        return super().get(kind=kind, version=version, key=key)

    def get_many(self, *, kind: str, version: str, keys: Sequence[str]) -> dict[str, Ranked]:
        self.reads += len(keys)
        return super().get_many(kind=kind, version=version, keys=keys)


def test_lists_in_the_workers_memory_are_not_read_again(
    loaded: LoadedBundle, tmp_path: Path
) -> None:
    store = CountingStore(path=tmp_path / "counting.db", options=DEFAULTS.store_options())
    cache = ListCache(max_items=1000)
    seed = seeds(loaded, 4)
    first, _ = stations.create(loaded, store, user="u1", seeds=seed, config=CONFIG, cache=cache)
    _, played = stations.next_tracks(loaded, store, station_id=first.id, n=3, config=CONFIG,
                                     cache=cache)  # fmt: skip
    stations.feedback(loaded, store, station_id=first.id, event_id="e1", kind=THUMBS_UP,
                      track=played[0], config=CONFIG, cache=cache)  # fmt: skip
    assert len(cache) >= 2  # the seed's list and the liked track's, computed and kept
    store.reads = 0
    # the same shuffle, so that it plays (and can be given feedback on) the same tracks
    second, _ = stations.create(loaded, store, user="u2", seeds=seed, config=CONFIG, cache=cache,
                                seed=first.seed)  # fmt: skip
    _, again_played = stations.next_tracks(loaded, store, station_id=second.id, n=3,
                                           config=CONFIG, cache=cache)  # fmt: skip
    assert again_played == played
    stations.feedback(loaded, store, station_id=second.id, event_id="e1", kind=THUMBS_UP,
                      track=played[0], config=CONFIG, cache=cache)  # fmt: skip
    assert store.reads == 0
    # the same lists as without memory: a station from the store alone starts the same
    again, _ = stations.create(loaded, store, user="u2", seeds=seed, config=CONFIG,
                               seed=second.seed)  # fmt: skip
    assert again.queue == second.queue
    store.close()


def test_what_a_station_takes_feedback_on() -> None:
    s = Station(id="s", user="u", variant="control", version="v", seed=1, seeds=["t0"],
                played=["t1"], queue=[Queued("t2", "a2", 1.0)])  # fmt: skip
    for kind in ("thumbs_up", "thumbs_down", "skip", "completed"):
        assert stations.rateable(s, kind=kind, track="t1")  # served: any feedback
        assert not stations.rateable(s, kind=kind, track="t9")  # neither served nor queued
    assert stations.rateable(s, kind="thumbs_down", track="t2")  # queued: a rating only
    assert stations.rateable(s, kind="thumbs_up", track="t2")
    assert not stations.rateable(s, kind="skip", track="t2")
    assert not stations.rateable(s, kind="completed", track="t2")
