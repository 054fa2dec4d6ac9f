"""Radio queue rules: plain Python, no HTTP and no store, tested on their own (hypothesis).

A station's queue starts as a weighted shuffle of its seeds' radio neighbours. Serving pops from
the front, never repeats a track and keeps one artist `artist_gap` slots apart. Before the queue
runs low it is refilled from the neighbours of liked tracks and of the seeds, and, when those are
used up, from the rest of the catalogue, so a long session never runs dry while eligible tracks
remain. Feedback reshapes the queue:

- thumbs up on t: t's neighbours are merged in with a boost;
- thumbs down on t: t never comes back, queued tracks near t (its neighbours, its artist) are
  down-weighted, and an artist with `artist_ban_downs` downs is dropped from the station;
- skip: a weak down (down-weights t's neighbours, counts a third of a down on its artist);
- completed: a weak up (merges t's neighbours with a small boost).

Every random choice comes from a generator seeded by the station's seed and its history, so the
same seeds, seed number and events replay the same station.

A station's state stays bounded whatever a listener does (it is read and written whole on every
call): it remembers its last `history` played tracks (none of them is served again), thumbed-down
and liked tracks and artist downs, its last `dropped_artists` dropped artists (so that a listener
who dislikes everything never empties a small catalogue for good), its last `event_ids` event ids
(a retried event among them changes nothing), and queues at most `queue_max` tracks, the heaviest.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple, Protocol

import numpy as np

THUMBS_UP, THUMBS_DOWN, SKIP, COMPLETED = "thumbs_up", "thumbs_down", "skip", "completed"
EVENT_TYPES = (THUMBS_UP, THUMBS_DOWN, SKIP, COMPLETED)


class Candidate(NamedTuple):  # a tuple: a station builds hundreds per list it reads
    track: str
    artist: str
    score: float


class Catalogue(Protocol):
    """What the rules need to know about tracks (the service reads it from bundle and store)."""

    def neighbours(self, track: str) -> list[Candidate]:
        """The track's radio neighbours, best first."""
        ...

    def prefetch(self, tracks: Sequence[str]) -> None:
        """A hint: the neighbours of these tracks are about to be asked for (a store can read
        them in one round trip instead of one each)."""
        ...

    def artist_of(self, track: str) -> str | None:
        """The track's artist, None for a track not in the catalogue."""
        ...

    def fallback(self, *, exclude: set[str], banned_artists: set[str], n: int) -> list[Candidate]:
        """Up to n more tracks not in `exclude` nor by `banned_artists` (e.g. the most popular)."""
        ...


@dataclass(frozen=True, kw_only=True)
class Rules:
    """The queue's parameters (`Settings.rules()` gives them their values)."""

    artist_gap: int  # a track's artist is not among the previous artist_gap tracks' artists
    low_water: int  # refill when fewer tracks are queued
    refill_sources: int  # liked tracks (most recent first) whose neighbours a refill reads
    up_boost: float  # thumbs up: weight of t's neighbours x (1 + up_boost)
    weak_up_boost: float  # completed
    down_factor: float  # thumbs down: queued neighbours of t, weight x down_factor
    weak_down_factor: float  # skip
    artist_down_factor: float  # thumbs down: queued tracks of t's artist
    artist_ban_downs: float  # downs on one artist that drop it (a skip counts skip_down)
    skip_down: float
    history: int  # played, thumbed-down and liked tracks, and artist downs, a station remembers
    dropped_artists: int  # the last dropped artists that stay out (the rest may come back)
    event_ids: int  # the last applied event ids kept: a retry among them changes nothing
    queue_max: int  # tracks queued at most (the heaviest stay)


@dataclass(slots=True)
class Queued:
    track: str
    artist: str
    weight: float


@dataclass
class Station:
    """A station's whole state; `to_json`/`from_json` keep it in the store."""

    id: str
    user: str
    variant: str
    version: str  # the bundle version the station is pinned to
    seed: int
    seeds: list[str]
    queue: list[Queued] = field(default_factory=list)
    played: list[str] = field(default_factory=list)  # the last `history` served, oldest first
    played_artists: list[str] = field(default_factory=list)  # the last artist_gap served
    banned: list[str] = field(default_factory=list)
    banned_artists: list[str] = field(default_factory=list)
    artist_downs: dict[str, float] = field(default_factory=dict)  # least recently downed first
    liked: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)  # the last applied client event ids
    counts: dict[str, int] = field(default_factory=dict)  # events applied per type, all time
    refills: int = 0
    exhausted: bool = False  # the catalogue had nothing eligible left at the last refill
    played_count: int = 0  # tracks served, all time

    def to_json(self) -> dict[str, Any]:
        # what dataclasses.asdict gives, without its recursive deep copy (a worker's largest
        # own cost under a feedback load, loadtest/README.md): the lists and dicts are copied
        # one level, which is all that JSON needs
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, value in data.items():
            if isinstance(value, list):
                data[name] = list(value)
            elif isinstance(value, dict):
                data[name] = dict(value)
        # the queue in columns: no key repeated per track, and built again with one map
        data["queue"] = {"tracks": [q.track for q in self.queue],
                         "artists": [q.artist for q in self.queue],
                         "weights": [q.weight for q in self.queue]}  # fmt: skip
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Station:
        fields = dict(data)
        queue = data.get("queue", [])
        if isinstance(queue, dict):
            columns = zip(queue["tracks"], queue["artists"], queue["weights"], strict=True)
            fields["queue"] = [Queued(t, a, w) for t, a, w in columns]
        else:  # a station stored before the columns: one object per queued track
            fields["queue"] = [Queued(q["track"], q["artist"], q["weight"]) for q in queue]
        # a station stored before the count was kept had its whole history
        fields.setdefault("played_count", len(data.get("played", [])))
        return cls(**fields)

    @property
    def event_count(self) -> int:
        """Events applied, all time."""
        return sum(self.counts.values())

    def excluded(self) -> set[str]:
        """Tracks that may never be queued again: played, seeds, thumbed down."""
        return set(self.played) | set(self.seeds) | set(self.banned)


def _rng(station: Station, purpose: str) -> random.Random:
    # str seeds are hashed with sha512 by random.Random: stable across runs and machines
    return random.Random(
        f"{station.seed}:{purpose}:{station.event_count}:{station.played_count}:{station.refills}"
    )


def weighted_shuffle(items: list[Queued], rng: random.Random) -> list[Queued]:
    """Efraimidis–Spirakis: heavier items tend to come first; every order is possible. The
    keys are drawn with numpy (seeded from `rng`): the queue is reshuffled on every feedback."""
    if len(items) < 2:
        return list(items)
    weights = np.fromiter((q.weight for q in items), dtype=np.float64, count=len(items))
    u = np.random.default_rng(rng.getrandbits(64)).random(len(items))
    keys = np.log1p(-u) / np.maximum(weights, 1e-12)
    return [items[i] for i in np.argsort(-keys, kind="stable").tolist()]


def new_station(
    *,
    id: str,
    user: str,
    variant: str,
    version: str,
    seed: int,
    seeds: list[str],
    catalogue: Catalogue,
    rules: Rules,
) -> Station:
    """A station whose queue is a weighted shuffle of the seeds' neighbours."""
    station = Station(id=id, user=user, variant=variant, version=version, seed=seed, seeds=seeds)
    merged: dict[str, Queued] = {}
    for s in seeds:
        _merge(
            merged, catalogue.neighbours(s), factor=1.0, exclude=station.excluded(), banned=set()
        )
    start = _heaviest(list(merged.values()), rules.queue_max)
    station.queue = weighted_shuffle(start, _rng(station, "start"))
    _top_up(station, catalogue, rules)
    return station


def _heaviest(items: list[Queued], n: int) -> list[Queued]:
    """The n heaviest items, in their order of weight (ties in their order in `items`)."""
    return items if len(items) <= n else heapq.nlargest(n, items, key=lambda q: q.weight)


def _forget(station: Station, rules: Rules) -> None:
    """Keeps the station's memory within the rules' bounds, the most recent entries first."""
    for kept, size in ((station.played, rules.history), (station.banned, rules.history),
                       (station.liked, rules.history),
                       (station.banned_artists, rules.dropped_artists),
                       (station.played_artists, max(rules.artist_gap, 1)),
                       (station.events, rules.event_ids)):  # fmt: skip
        del kept[: max(len(kept) - size, 0)]
    while len(station.artist_downs) > rules.history:
        del station.artist_downs[next(iter(station.artist_downs))]


def _merge(
    into: dict[str, Queued],
    candidates: Iterable[Candidate],
    *,
    factor: float,
    exclude: set[str],
    banned: set[str],
) -> None:
    """Adds candidates (weight score x factor) or raises the weight of those already in."""
    for c in candidates:
        if c.track in exclude or c.artist in banned:
            continue
        w = max(c.score, 1e-3) * factor
        q = into.get(c.track)
        if q is None:
            into[c.track] = Queued(track=c.track, artist=c.artist, weight=w)
        else:
            q.weight += w


def next_tracks(station: Station, *, n: int, catalogue: Catalogue, rules: Rules) -> list[str]:
    """Pops the next n tracks (fewer only when the catalogue has nothing eligible left)."""
    out: list[str] = []
    for _ in range(n):
        if len(station.queue) < rules.low_water:
            _top_up(station, catalogue, rules)
        i = _pick(station, rules)
        if i is None:
            _top_up(station, catalogue, rules, force=True)
            i = _pick(station, rules)
            if i is None:
                i = _pick(station, rules, gap=0)  # only recent artists remain eligible
            if i is None:
                break
        q = station.queue.pop(i)
        station.played.append(q.track)
        station.played_artists.append(q.artist)
        station.played_count += 1
        out.append(q.track)
    _forget(station, rules)
    return out


def upcoming(station: Station, *, n: int, catalogue: Catalogue, rules: Rules) -> list[str]:
    """The next n tracks exactly as `next_tracks` would serve them now, the station unchanged
    (they are picked from a copy): what a player shows as "up next"."""
    return next_tracks(Station.from_json(station.to_json()), n=n, catalogue=catalogue, rules=rules)


def _pick(station: Station, rules: Rules, *, gap: int | None = None) -> int | None:
    """The first queued track whose artist is not among the last `gap` played artists."""
    g = rules.artist_gap if gap is None else gap
    recent = set(station.played_artists[-g:]) if g > 0 else set()
    for i, q in enumerate(station.queue):
        if q.artist not in recent:
            return i
    return None


def _top_up(station: Station, catalogue: Catalogue, rules: Rules, *, force: bool = False) -> None:
    """Refills the queue from liked tracks and seeds, then from the rest of the catalogue."""
    if station.exhausted and not force:
        return
    exclude = station.excluded() | {q.track for q in station.queue}
    banned = set(station.banned_artists)
    fresh: dict[str, Queued] = {}
    sources = [*reversed(station.liked[-rules.refill_sources :]), *station.seeds]
    catalogue.prefetch(sources)
    for track in sources:
        _merge(fresh, catalogue.neighbours(track), factor=1.0, exclude=exclude, banned=banned)
    need = rules.low_water * 2
    if len(fresh) < need:
        # neighbours of the most recently played tracks (read only when needed), then anything
        recent = list(reversed(station.played[-rules.refill_sources :]))
        catalogue.prefetch(recent)
        for track in recent:
            _merge(fresh, catalogue.neighbours(track), factor=0.5, exclude=exclude, banned=banned)
        if len(fresh) < need:
            extra = catalogue.fallback(
                exclude=exclude | set(fresh), banned_artists=banned, n=need - len(fresh)
            )
            _merge(fresh, extra, factor=0.1, exclude=exclude, banned=banned)
    station.refills += 1
    station.exhausted = not fresh and not station.queue
    room = max(rules.queue_max - len(station.queue), 1)  # 1: a forced refill adds a track
    station.queue += weighted_shuffle(_heaviest(list(fresh.values()), room),
                                      _rng(station, "refill"))  # fmt: skip


def apply(
    station: Station, *, event_id: str, kind: str, track: str, catalogue: Catalogue, rules: Rules
) -> bool:
    """Applies one feedback event; False (and no change) if this event id was applied before."""
    if kind not in EVENT_TYPES:
        raise ValueError(f"unknown feedback {kind!r}; one of {EVENT_TYPES}")
    if event_id in station.events:
        return False
    artist = catalogue.artist_of(track)
    neighbours = catalogue.neighbours(track)
    near = {c.track for c in neighbours}
    if kind in (THUMBS_UP, COMPLETED):
        boost = rules.up_boost if kind == THUMBS_UP else rules.weak_up_boost
        if kind == THUMBS_UP and track not in station.liked:
            station.liked.append(track)
        merged = {q.track: q for q in station.queue}
        _merge(merged, neighbours, factor=boost, exclude=station.excluded(),
               banned=set(station.banned_artists))  # fmt: skip
        station.queue = _heaviest(list(merged.values()), rules.queue_max)
    else:
        factor = rules.down_factor if kind == THUMBS_DOWN else rules.weak_down_factor
        for q in station.queue:
            if q.track in near:
                q.weight *= factor
        if kind == THUMBS_DOWN:
            if track not in station.banned:
                station.banned.append(track)
            if track in station.liked:
                station.liked.remove(track)
            station.queue = [q for q in station.queue if q.track != track]
            for q in station.queue:
                if artist is not None and q.artist == artist:
                    q.weight *= rules.artist_down_factor
        if artist is not None:
            downs = station.artist_downs.pop(artist, 0.0)  # re-added last: the most recent
            downs += 1.0 if kind == THUMBS_DOWN else rules.skip_down
            station.artist_downs[artist] = downs
            if downs >= rules.artist_ban_downs - 1e-9 and artist not in station.banned_artists:
                station.banned_artists.append(artist)
                station.queue = [q for q in station.queue if q.artist != artist]
    station.events.append(event_id)
    station.counts[kind] = station.counts.get(kind, 0) + 1
    station.exhausted = False  # the queue changed: let the next refill look again
    station.queue = weighted_shuffle(station.queue, _rng(station, "feedback"))
    _forget(station, rules)
    return True
