"""Property-based tests of the radio queue rules (service/radio.py), with no HTTP and no store."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from service import radio
from service.radio import Candidate, Rules, Station
from service.settings import Settings

RULES = Settings.defaults().rules()  # the service's rules


@dataclass
class ToyCatalogue:
    """Tracks in genres; a track's neighbours are tracks of its genre, nearest index first."""

    n_genres: int
    artists_per_genre: int
    tracks_per_artist: int
    reads: list[str] = field(default_factory=list)
    prefetched: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.tracks: list[tuple[str, str, int]] = []  # (track, artist, genre)
        for g in range(self.n_genres):
            for a in range(self.artists_per_genre):
                for t in range(self.tracks_per_artist):
                    self.tracks.append((f"t{g}-{a}-{t}", f"a{g}-{a}", g))
        self.by_id = {t: (a, g) for t, a, g in self.tracks}

    def genre(self, track: str) -> int:
        return self.by_id[track][1]

    def neighbours(self, track: str) -> list[Candidate]:
        self.reads.append(track)
        g = self.genre(track)
        same = [(t, a) for t, a, gg in self.tracks if gg == g and t != track]
        return [Candidate(t, a, 1.0 / (1 + i)) for i, (t, a) in enumerate(same[:250])]

    def prefetch(self, tracks: Sequence[str]) -> None:
        self.prefetched.extend(tracks)

    def artist_of(self, track: str) -> str | None:
        hit = self.by_id.get(track)
        return hit[0] if hit else None

    def fallback(self, *, exclude: set[str], banned_artists: set[str], n: int) -> list[Candidate]:
        out = [Candidate(t, a, 0.01) for t, a, _ in self.tracks
               if t not in exclude and a not in banned_artists]  # fmt: skip
        return out[:n]


catalogues = st.builds(
    ToyCatalogue,
    n_genres=st.integers(2, 5),
    artists_per_genre=st.integers(4, 8),
    tracks_per_artist=st.integers(3, 8),
)
actions = st.lists(
    st.tuples(
        st.sampled_from(["next", *radio.EVENT_TYPES]), st.integers(1, 12), st.integers(0, 10**6)
    ),
    min_size=1,
    max_size=40,
)


def start(cat: ToyCatalogue, seed: int, n_seeds: int = 1, *, rules: Rules = RULES) -> Station:
    seeds = [cat.tracks[(seed * 7 + i * 13) % len(cat.tracks)][0] for i in range(n_seeds)]
    return radio.new_station(id="s", user="u", variant="control", version="v1", seed=seed,
                             seeds=seeds, catalogue=cat, rules=rules)  # fmt: skip


def run(
    station: Station, cat: ToyCatalogue, steps: list[tuple[str, int, int]], *,
    rules: Rules = RULES, after_each: Callable[[Station], None] | None = None,
) -> list[str]:  # fmt: skip
    """Plays the steps; feedback goes to a served track (or any track, by the step's number).
    `after_each` is called with the station after every step."""
    served: list[str] = []
    for i, (kind, n, pick) in enumerate(steps):
        if kind == "next":
            served += radio.next_tracks(station, n=n, catalogue=cat, rules=rules)
        else:
            pool = served or [t for t, _, _ in cat.tracks]
            radio.apply(station, event_id=f"e{i}", kind=kind, track=pool[pick % len(pool)],
                        catalogue=cat, rules=rules)  # fmt: skip
        if after_each is not None:
            after_each(station)
    return served


@settings(max_examples=150, deadline=None)
@given(cat=catalogues, seed=st.integers(0, 10**6), steps=actions)
def test_no_track_is_served_twice(cat: ToyCatalogue, seed: int, steps: list) -> None:  # type: ignore[type-arg]
    station = start(cat, seed)
    served = run(station, cat, steps)
    assert len(served) == len(set(served))
    assert not set(served) & set(station.seeds)


@settings(max_examples=100, deadline=None)
@given(cat=catalogues, seed=st.integers(0, 10**6), steps=actions, n=st.integers(1, 15))
def test_upcoming_is_what_comes_next_and_changes_nothing(
    cat: ToyCatalogue,
    seed: int,
    steps: list,
    n: int,  # type: ignore[type-arg]
) -> None:
    station = start(cat, seed)
    run(station, cat, steps)
    before = station.to_json()
    shown = radio.upcoming(station, n=n, catalogue=cat, rules=RULES)
    assert station.to_json() == before
    assert radio.next_tracks(station, n=n, catalogue=cat, rules=RULES) == shown


@settings(max_examples=150, deadline=None)
@given(cat=catalogues, seed=st.integers(0, 10**6), steps=actions)
def test_a_thumbed_down_track_never_returns(cat: ToyCatalogue, seed: int, steps: list) -> None:  # type: ignore[type-arg]
    station = start(cat, seed)
    served: list[str] = []
    downed: set[str] = set()
    for i, (kind, n, pick) in enumerate(steps):
        if kind == "next":
            batch = radio.next_tracks(station, n=n, catalogue=cat, rules=RULES)
            assert not set(batch) & downed
            served += batch
        else:
            track = cat.tracks[pick % len(cat.tracks)][0]
            radio.apply(
                station, event_id=f"e{i}", kind=kind, track=track, catalogue=cat, rules=RULES
            )
            if kind == radio.THUMBS_DOWN:
                downed.add(track)
    rest = radio.next_tracks(station, n=len(cat.tracks), catalogue=cat, rules=RULES)
    assert not set(rest) & downed  # not even when the station drains the whole catalogue


@settings(max_examples=150, deadline=None)
@given(cat=catalogues, seed=st.integers(0, 10**6), steps=actions)
def test_one_artist_stays_apart_while_others_are_eligible(cat: ToyCatalogue, seed: int,
                                                          steps: list) -> None:  # type: ignore[type-arg]  # fmt: skip
    station = start(cat, seed)
    served = run(station, cat, steps)
    # every genre has >= 4 artists and the fallback reaches the whole catalogue, so there is
    # always another artist to play until fewer than gap + 1 artists have tracks left
    artists = [cat.by_id[t][0] for t in served]
    for i in range(len(artists)):
        recent = artists[max(0, i - RULES.artist_gap) : i]
        if artists[i] in recent:
            played_before = set(served[:i])
            left = {a for t, a, _ in cat.tracks if t not in played_before
                    and t not in station.seeds and t not in station.banned
                    and a not in station.banned_artists}  # fmt: skip
            assert left <= set(recent) | {artists[i]}, (i, artists[i], recent)


@settings(max_examples=100, deadline=None)
@given(
    cat=catalogues, seed=st.integers(0, 10**6), n_seeds=st.integers(1, 3), batch=st.integers(1, 25)
)
def test_the_queue_never_runs_dry_early(
    cat: ToyCatalogue, seed: int, n_seeds: int, batch: int
) -> None:
    station = start(cat, seed, n_seeds)
    eligible = len(cat.tracks) - len(set(station.seeds))
    served: list[str] = []
    while len(served) < eligible:
        got = radio.next_tracks(station, n=batch, catalogue=cat, rules=RULES)
        assert len(got) == min(batch, eligible - len(served)), "ran dry with tracks left"
        served += got
    assert radio.next_tracks(station, n=5, catalogue=cat, rules=RULES) == []  # truly empty
    assert len(set(served)) == eligible


@settings(max_examples=60, deadline=None)
@given(cat=catalogues, seed=st.integers(0, 10**6), steps=actions)
def test_repeated_downs_drop_the_artist(cat: ToyCatalogue, seed: int, steps: list) -> None:  # type: ignore[type-arg]
    station = start(cat, seed)
    run(station, cat, steps)
    artist = cat.tracks[seed % len(cat.tracks)][1]
    tracks = [t for t, a, _ in cat.tracks if a == artist]
    for i, t in enumerate(tracks[:2]):
        radio.apply(station, event_id=f"down{i}", kind=radio.THUMBS_DOWN, track=t, catalogue=cat,
                    rules=RULES)  # fmt: skip
    assert artist in station.banned_artists
    rest = radio.next_tracks(station, n=len(cat.tracks), catalogue=cat, rules=RULES)
    assert artist not in {cat.artist_of(t) for t in rest}


def test_a_station_replays_from_its_seed_and_events() -> None:
    def play(seed: int) -> list[str]:
        cat = ToyCatalogue(3, 5, 6)
        station = start(cat, seed)
        out = radio.next_tracks(station, n=5, catalogue=cat, rules=RULES)
        radio.apply(
            station, event_id="a", kind=radio.THUMBS_UP, track=out[0], catalogue=cat, rules=RULES
        )
        radio.apply(
            station, event_id="b", kind=radio.SKIP, track=out[1], catalogue=cat, rules=RULES
        )
        return out + radio.next_tracks(station, n=10, catalogue=cat, rules=RULES)

    assert play(5) == play(5)
    assert play(5) != play(6)


def test_a_retried_event_changes_nothing() -> None:
    cat = ToyCatalogue(3, 5, 6)
    station = start(cat, 1)
    out = radio.next_tracks(station, n=3, catalogue=cat, rules=RULES)
    assert radio.apply(
        station, event_id="x", kind=radio.THUMBS_UP, track=out[0], catalogue=cat, rules=RULES
    )
    before = Station.from_json(station.to_json())
    assert not radio.apply(
        station, event_id="x", kind=radio.THUMBS_UP, track=out[0], catalogue=cat, rules=RULES
    )
    assert station == before
    assert Station.from_json(station.to_json()) == station  # the stored form round-trips


def test_thumbs_up_pulls_its_genre_forward() -> None:
    cat = ToyCatalogue(4, 6, 8)
    liked_genre, hits_with, hits_without = 0, 0, 0
    for seed in range(30):
        a = start(cat, seed)
        b = start(cat, seed)
        first = radio.next_tracks(a, n=1, catalogue=cat, rules=RULES)
        radio.next_tracks(b, n=1, catalogue=cat, rules=RULES)
        other = next(t for t, _, g in cat.tracks if g != cat.genre(first[0]))
        liked_genre = cat.genre(other)
        radio.apply(a, event_id="up", kind=radio.THUMBS_UP, track=other, catalogue=cat, rules=RULES)
        hits_with += sum(
            cat.genre(t) == liked_genre
            for t in radio.next_tracks(a, n=10, catalogue=cat, rules=RULES)
        )
        hits_without += sum(
            cat.genre(t) == liked_genre
            for t in radio.next_tracks(b, n=10, catalogue=cat, rules=RULES)
        )
    assert hits_with > hits_without + 30


def test_a_station_round_trips_through_json_and_reads_the_older_format() -> None:
    import json
    from dataclasses import asdict

    from service.radio import Queued

    station = Station(id="s", user="u", variant="control", version="v1", seed=7, seeds=["t1"],
                      queue=[Queued("t2", "a2", 0.5), Queued("t3", "a3", 1.5)], played=["t1"],
                      artist_downs={"a9": 1.0}, events=["e1"], counts={"skip": 1}, refills=2,
                      played_count=1)  # fmt: skip
    assert Station.from_json(json.loads(json.dumps(station.to_json()))) == station
    assert station.to_json()["queue"] == {"tracks": ["t2", "t3"], "artists": ["a2", "a3"],
                                          "weights": [0.5, 1.5]}  # fmt: skip
    older = asdict(station)  # what stations stored before the queue was kept in columns
    assert isinstance(older["queue"], list)
    assert Station.from_json(json.loads(json.dumps(older))) == station


SMALL = dataclasses.replace(RULES, history=7, dropped_artists=3, event_ids=5, queue_max=40)


@settings(max_examples=100, deadline=None)
@given(cat=catalogues, seed=st.integers(0, 10**6), steps=actions)
def test_a_station_stays_within_its_bounds(cat: ToyCatalogue, seed: int, steps: list) -> None:  # type: ignore[type-arg]
    def within_bounds(station: Station) -> None:
        assert len(station.played) <= 7 and len(station.banned) <= 7 and len(station.liked) <= 7
        assert len(station.events) <= 5 and len(station.artist_downs) <= 7
        assert len(station.banned_artists) <= 3
        assert len(station.played_artists) <= max(SMALL.artist_gap, 1)
        assert len(station.queue) <= SMALL.queue_max + 1

    station = start(cat, seed, rules=SMALL)
    served = run(station, cat, steps * 3, rules=SMALL, after_each=within_bounds)
    assert station.played_count == len(served) and station.played == served[-7:]
    for i, t in enumerate(served):  # no track again within the history window
        assert t not in served[max(0, i - 7) : i]


def test_a_station_remembers_its_last_event_ids() -> None:
    cat = ToyCatalogue(3, 5, 6)
    station = start(cat, 3, rules=SMALL)
    track = radio.next_tracks(station, n=1, catalogue=cat, rules=SMALL)[0]
    for i in range(8):
        assert radio.apply(station, event_id=f"e{i}", kind=radio.COMPLETED, track=track,
                           catalogue=cat, rules=SMALL)  # fmt: skip
    assert station.events == ["e3", "e4", "e5", "e6", "e7"] and station.event_count == 8
    assert not radio.apply(station, event_id="e3", kind=radio.COMPLETED, track=track,
                           catalogue=cat, rules=SMALL)  # fmt: skip


def test_a_station_stored_before_the_bounds_loads() -> None:
    old = {"id": "s", "user": "u", "variant": "control", "version": "v1", "seed": 1,
           "seeds": ["t1"], "queue": [{"track": "t2", "artist": "a2", "weight": 0.5}],
           "played": ["t3", "t4"], "played_artists": ["a3", "a4"], "banned": [],
           "banned_artists": [], "artist_downs": {}, "liked": [], "events": ["e1"],
           "counts": {"skip": 1}, "refills": 1, "exhausted": False}  # fmt: skip
    station = Station.from_json(old)
    assert station.played_count == 2 and station.event_count == 1


def test_a_damaged_queue_is_refused_not_cut_short() -> None:
    import pytest

    station = Station(id="s", user="u", variant="control", version="v1", seed=7, seeds=["t1"])
    data = station.to_json()
    data["queue"] = {"tracks": ["t2", "t3"], "artists": ["a2"], "weights": [0.5, 1.5]}
    with pytest.raises(ValueError):
        Station.from_json(data)
