"""Radio stations: load, apply, persist. The queue rules are in `radio.py`; this module gives
them a catalogue (bundle + store), keeps each station in the store and updates it with a
conditional write on its revision, retrying on conflict, so concurrent calls never lose an event.

A station is pinned to the bundle version that created it: its radio lists are read from the
store under that version (and its variant). While that version is the one served, a missing list
is computed and written back; after a hot swap, a list the store does not have is computed from
the bundle now served (the station keeps its own state, seeds and history either way).
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import orjson

from service import errors, radio
from service.bundle_holder import LoadedBundle
from service.experiments import CONTROL, assign, store_version
from service.list_cache import ListCache, ListKey, RankedRows
from service.neighbours import RadioShape, compute_radio, list_version, ranked, stored_items
from service.radio import Candidate, Station
from service.settings import StationConfig
from service.store.base import RADIO, EventRecord, Ranked, Store


class StationNotFound(errors.NotFound):
    def __init__(self, station_id: str) -> None:
        super().__init__("station", station_id)


class StationBusy(errors.Busy):
    """Too many concurrent updates of one station; the client may retry."""


class NotPlayed(errors.BadParameter):
    """Feedback on a track the station has neither served (among the last it remembers) nor,
    for a thumbs up or down, queued: 422. Only what a station chose can be rated, so no one puts
    events on tracks it never offered into the event log that `segue events export` hands to the
    next build."""

    def __init__(self, station_id: str, track: str) -> None:
        super().__init__(
            "track_id",
            f"station {station_id!r} has not played track {track!r} (feedback is for the "
            "tracks it served, the last SEGUE_STATION_HISTORY of them; a thumbs up or down also "
            "for the tracks it has queued)",
            where="body", kind="not_played",
        )  # fmt: skip


# a listener may rate what the station shows it is coming (the console's "Up next"); a skip or
# a completed play is only of a track it served
RATINGS = frozenset({"thumbs_up", "thumbs_down"})


def rateable(station: Station, *, kind: str, track: str) -> bool:
    """Whether feedback of `kind` on `track` is the station's to take: any kind on a track it
    served (among the last it remembers), a thumbs up or down also on a track it has queued."""
    if track in station.played:
        return True
    return kind in RATINGS and any(q.track == track for q in station.queue)


class BundleCatalogue:
    """radio.Catalogue over the served bundle and the store's radio lists of one station.

    While the station's version is the one served, its lists are read through the worker's
    `cache` (the LRU the list endpoints use; a list of the control variant is the same list),
    then the store, and computed and written back when missing. After a hot swap the stored
    lists are read by id (their rows are another bundle's) and not kept in memory."""

    def __init__(
        self, loaded: LoadedBundle, store: Store, *, version: str, variant: str,
        config: StationConfig, cache: ListCache | None = None,
    ) -> None:  # fmt: skip
        self.loaded, self.store, self.config = loaded, store, config
        self.version, self.variant = version, variant
        shape = RadioShape(
            size=config.radio_size, artist_cap=config.radio_artist_cap,
            per_source=config.per_source, search_k=config.search_k,
        )  # fmt: skip
        self.key = list_version(store_version(version, variant), shape=shape)
        self.tracks = loaded.bundle.tracks
        self.pinned = loaded.version == version
        self.cache = cache if self.pinned else None
        self._seen: dict[str, list[Candidate]] = {}
        self._uncached: set[str] = set()  # prefetched and not in the store: no second read

    def artist_of(self, track: str) -> str | None:
        row = self.tracks.row_of(track)
        if row is None:
            return None
        assert self.tracks.artist is not None
        return self.loaded.bundle.artists.id_of(int(self.tracks.artist[row]))

    def _list_key(self, track: str) -> ListKey:
        return ListKey(kind=RADIO, version=self.key, key=track)

    def _of_rows(self, ranked: RankedRows) -> list[Candidate]:
        """Candidates of a list of this bundle's rows: two gathers, no lookup per track."""
        assert self.tracks.artist is not None
        ids = self.tracks.ids_of(ranked.rows)
        artists = self.loaded.bundle.artists.ids_of(np.asarray(self.tracks.artist)[ranked.rows])
        return [Candidate(track=t, artist=a, score=s)
                for t, a, s in zip(ids, artists, ranked.scores.tolist(), strict=True)]  # fmt: skip

    def _of_stored(self, track: str, stored: Ranked) -> list[Candidate] | None:
        """Candidates of a list read from the store; None for a damaged one (a miss)."""
        if self.pinned:
            items = stored_items(stored, row_of=self.tracks.row_of, n_rows=len(self.tracks))
            if items is None:
                return None
            rows = RankedRows.of_items(items)
            if self.cache is not None:
                self.cache.put(self._list_key(track), rows)
            return self._of_rows(rows)
        out = []
        for t, s in zip(stored.ids, stored.scores, strict=True):
            a = self.artist_of(t)
            if a is not None:  # a track the served bundle no longer has is left out
                out.append(Candidate(track=t, artist=a, score=float(s)))
        return out

    def _from_memory(self, track: str) -> list[Candidate] | None:
        found = None if self.cache is None else self.cache.get(self._list_key(track))
        return None if found is None else self._of_rows(found)

    def prefetch(self, tracks: Sequence[str]) -> None:
        missing = []
        for t in dict.fromkeys(tracks):
            if t in self._seen:
                continue
            if (found := self._from_memory(t)) is not None:
                self._seen[t] = found
            else:
                missing.append(t)
        if not missing:
            return
        stored = self.store.get_many(kind=RADIO, version=self.key, keys=missing)
        for track, ranked_list in stored.items():
            if (candidates := self._of_stored(track, ranked_list)) is not None:
                self._seen[track] = candidates
        self._uncached.update(t for t in missing if t not in self._seen)

    def neighbours(self, track: str) -> list[Candidate]:
        if track in self._seen:
            return self._seen[track]
        result = self._from_memory(track)
        if result is None and track not in self._uncached:
            stored = self.store.get(kind=RADIO, version=self.key, key=track)
            result = None if stored is None else self._of_stored(track, stored)
        if result is None:
            result = self._compute(track)
        self._seen[track] = result
        return result

    def _compute(self, track: str) -> list[Candidate]:
        """The list from the bundle; written back (and kept in memory) under the station's key
        only while its version is the one served."""
        row = self.tracks.row_of(track)
        if row is None:
            return []
        variant = self.loaded.variants.get(self.variant if self.pinned else CONTROL)
        items = compute_radio(
            self.loaded, row=row, size=self.config.radio_size,
            artist_cap=self.config.radio_artist_cap, per_source=self.config.per_source,
            scorer=variant.scorer if variant is not None else None,
        )  # fmt: skip
        rows = RankedRows.of_items(items)
        if self.pinned:
            self.store.put_many(
                kind=RADIO, version=self.key, items=[(track, ranked(self.loaded, items))]
            )
            if self.cache is not None:
                self.cache.put(self._list_key(track), rows)
        return self._of_rows(rows)

    def fallback(self, *, exclude: set[str], banned_artists: set[str], n: int) -> list[Candidate]:
        """The most listened eligible tracks, then any eligible track of the catalogue."""
        out: list[Candidate] = []
        for row in self._rows_by_popularity():
            t = self.tracks.id_of(row)
            if t in exclude:
                continue
            artist = self.artist_of(t)
            if artist is None or artist in banned_artists:
                continue
            out.append(Candidate(track=t, artist=artist, score=0.01))
            if len(out) >= n:
                break
        return out

    def _rows_by_popularity(self) -> Iterator[int]:
        popular = self.loaded.scorers["tracks"].popular
        yield from (int(r) for r in popular)
        seen = set(popular.tolist())
        for row in range(len(self.tracks)):
            if row not in seen:
                yield row


def seed_tracks(
    loaded: LoadedBundle, *, tracks: list[str], artists: list[str], per_artist: int
) -> list[str]:
    """The seed tracks: the given tracks, and each artist's most listened tracks."""
    out = list(dict.fromkeys(tracks))
    t = loaded.bundle.tracks
    assert t.artist is not None
    for a in artists:
        row = loaded.bundle.artists.row_of(a)
        if row is None:
            continue
        rows = np.flatnonzero(np.asarray(t.artist) == row)
        best = rows[np.argsort(-np.asarray(t.listeners)[rows], kind="stable")][:per_artist]
        out += [t.id_of(int(r)) for r in best if t.id_of(int(r)) not in out]
    return out


def create(
    loaded: LoadedBundle, store: Store, *, user: str, seeds: list[str], config: StationConfig,
    seed: int | None = None, cache: ListCache | None = None,
) -> tuple[Station, int]:  # fmt: skip
    """A new station (revision 1) pinned to the served bundle, in the user's variant."""
    variant = assign(user, loaded.variants) if loaded.variants else CONTROL
    station_id = uuid.uuid4().hex
    catalogue = BundleCatalogue(loaded, store, version=loaded.version, variant=variant,
                                config=config, cache=cache)  # fmt: skip
    station = radio.new_station(
        id=station_id, user=user, variant=variant, version=loaded.version,
        seed=seed if seed is not None else random.getrandbits(31), seeds=seeds,
        catalogue=catalogue, rules=config.rules,
    )  # fmt: skip
    if not store.create_station(station_id=station_id, state=_dump(station)):
        raise StationBusy(f"station id {station_id} already taken; try again")
    return station, 1


def get(store: Store, *, station_id: str, owner: str | None = None) -> tuple[Station, int]:
    """The station and its revision. With an `owner` (the caller's user id), someone else's
    station is not found, exactly as one that does not exist; None: anyone's (an admin)."""
    stored = store.get_station(station_id=station_id)
    if stored is None:
        raise StationNotFound(station_id)
    station = Station.from_json(_load(stored.state))
    if owner is not None and station.user != owner:
        raise StationNotFound(station_id)
    return station, stored.revision


def _update(
    loaded: LoadedBundle, store: Store, *, station_id: str, config: StationConfig,
    change: Callable[[Station, BundleCatalogue], bool], cache: ListCache | None,
    log: Callable[[Station], list[EventRecord]] | None = None, owner: str | None = None,
) -> tuple[Station, int, bool]:  # fmt: skip
    """Reads the station, lets `change` modify it and writes it back only if its revision is
    still the one read, retrying on conflict; `log`'s events go to the event log with that
    write. Only `owner`'s station (see `get`). `change` returns False when there is nothing to write. Returns (station, its
    revision now, written)."""
    catalogue: BundleCatalogue | None = None
    deadline = time.monotonic() + config.busy_seconds
    for attempt in range(config.max_attempts):
        station, revision = get(store, station_id=station_id, owner=owner)
        if catalogue is None:  # a station's version and variant never change: one per call
            catalogue = BundleCatalogue(loaded, store, version=station.version,
                                        variant=station.variant, config=config,
                                        cache=cache)  # fmt: skip
        if not change(station, catalogue):
            return station, revision, False
        if store.update_station(
            station_id=station_id,
            state=_dump(station),
            expected_revision=revision,
            events=log(station) if log is not None else (),
        ):
            return station, revision + 1, True
        if time.monotonic() >= deadline:
            break
        _backoff(attempt)
    raise StationBusy(f"station {station_id!r} is busy; try again")


def next_tracks(
    loaded: LoadedBundle, store: Store, *, station_id: str, n: int, config: StationConfig,
    cache: ListCache | None = None, owner: str | None = None,
) -> tuple[Station, list[str]]:  # fmt: skip
    """Advances the station by up to n tracks (a conditional write; retried on conflict)."""
    served: list[str] = []

    def advance(station: Station, catalogue: BundleCatalogue) -> bool:
        served[:] = radio.next_tracks(station, n=n, catalogue=catalogue, rules=config.rules)
        return True

    station, _, _ = _update(loaded, store, station_id=station_id, config=config, change=advance,
                            cache=cache, owner=owner)  # fmt: skip
    return station, served


def upcoming(
    loaded: LoadedBundle, store: Store, *, station_id: str, n: int, config: StationConfig,
    cache: ListCache | None = None, owner: str | None = None,
) -> tuple[Station, int, list[str]]:  # fmt: skip
    """The station, its revision and the next n tracks it would serve now; nothing is written
    (radio lists it had to compute are written back, as on any read). Only `owner`'s station
    (see `get`)."""
    station, revision = get(store, station_id=station_id, owner=owner)
    catalogue = BundleCatalogue(loaded, store, version=station.version, variant=station.variant,
                                config=config, cache=cache)  # fmt: skip
    return station, revision, radio.upcoming(station, n=n, catalogue=catalogue, rules=config.rules)


def feedback(
    loaded: LoadedBundle, store: Store, *, station_id: str, event_id: str, kind: str, track: str,
    config: StationConfig, cache: ListCache | None = None, owner: str | None = None,
) -> tuple[Station, int, bool]:  # fmt: skip
    """Applies one event exactly once (by event id) and logs it with the station's write:
    (station, revision, newly applied). A retried event changes nothing; it is logged again
    (idempotent by event id), in case the first call failed after its write."""

    def apply(station: Station, catalogue: BundleCatalogue) -> bool:
        if event_id not in station.events and not rateable(station, kind=kind, track=track):
            raise NotPlayed(station.id, track)
        return radio.apply(station, event_id=event_id, kind=kind, track=track,
                           catalogue=catalogue, rules=config.rules)  # fmt: skip

    def log(station: Station) -> list[EventRecord]:
        return [_record(station, event_id=event_id, kind=kind, track=track)]

    station, revision, applied = _update(
        loaded,
        store,
        station_id=station_id,
        config=config,
        change=apply,
        cache=cache,
        log=log,
        owner=owner,
    )
    if not applied:
        store.append_events(events=log(station))
    return station, revision, applied


def delete(store: Store, *, station_id: str, owner: str | None = None) -> None:
    if owner is not None:
        get(store, station_id=station_id, owner=owner)  # 404 unless it is theirs
    if not store.delete_station(station_id=station_id):
        raise StationNotFound(station_id)


def _record(station: Station, *, event_id: str, kind: str, track: str) -> EventRecord:
    return EventRecord(
        station_id=station.id, event_id=event_id, user_id=station.user, variant=station.variant,
        bundle_version=station.version, track_id=track, kind=kind, at=time.time(),
    )  # fmt: skip


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, min(0.2, 0.005 * 2 ** min(attempt, 6))))


def _dump(station: Station) -> str:
    return orjson.dumps(station.to_json()).decode()


def _load(text: str) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(text)
    return data
