"""The synthetic sessions: who listens when, and which tracks each session plays, drawn week
by week by genre, taste and (with time dynamics) each track's popularity at the session's start
(see `indexes.datasets.synthetic`).

Every draw comes from the sessions' random stream in a fixed order: the same seed and size give
the same plays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from indexes.datasets.shape import Sequences
from indexes.datasets.synthetic_catalogue import DAY, DAYS, EPOCH, Listeners, SyntheticCatalogue

PLAY_SECONDS = 210.0  # mean time from one play of a session to the next (± 60 s)
# popularity over time
RISE_DAYS = 1.5  # how fast a release picks up
FLOOR = 0.03  # the share of its peak popularity a track keeps for good
MAX_REDRAWS = 32  # rejection rounds per pick (each accepts with probability >= FLOOR)


def play_sessions(
    srng: np.random.Generator,
    *,
    catalogue: SyntheticCatalogue,
    listeners: Listeners,
    time_dynamics: bool,
) -> Sequences:
    """Each user's sessions in time order, each play a few minutes after the one before; the
    tracks drawn week by week (`_Player`)."""
    frame = _session_frame(srng, n_users=listeners.n_users)
    player = _Player(
        srng,
        table=_SamplingTable.of(catalogue),
        track_artist=catalogue.track_artist,
        listeners=listeners,
        frame=frame,
        genre=listeners.favourite_genre(srng, frame.session_user),
    )
    # the weeks start on the release Fridays, so no track comes out within a week
    span_start, span_end = EPOCH, EPOCH + DAYS * DAY
    edges = np.array([span_start, span_end])
    if time_dynamics:
        edges = np.unique(np.concatenate([edges, catalogue.fridays]))
    session_week = np.searchsorted(edges, frame.timestamps, side="right") - 1
    for week in range(len(edges) - 1):
        sessions = np.flatnonzero(session_week == week)
        if len(sessions):
            player.play_week(
                sessions, lo=edges[week], hi=edges[week + 1], time_dynamics=time_dynamics
            )
    return Sequences(
        indptr=frame.indptr,
        items=player.items,
        user=frame.session_user.astype(np.int32),
        timestamp=frame.timestamps,
        ordered=True,
        times=frame.times,
    )


@dataclass(frozen=True)
class _SessionFrame:
    """Who plays each session, when it starts, how long it is and when each play happens."""

    session_user: NDArray[np.int64]
    lengths: NDArray[np.int64]
    indptr: NDArray[np.int64]
    timestamps: NDArray[np.float64]  # session starts, each user's in time order
    times: NDArray[np.float64]  # per play


def _session_frame(srng: np.random.Generator, *, n_users: int) -> _SessionFrame:
    span_start, span_end = EPOCH, EPOCH + DAYS * DAY
    per_user = 1 + srng.poisson(4, size=n_users)
    session_user = np.repeat(np.arange(n_users), per_user)
    n_sessions = len(session_user)
    lengths = np.minimum(3 + srng.poisson(9, size=n_sessions), 40)
    indptr = np.zeros(n_sessions + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    n_items = int(indptr[-1])
    timestamps = span_start + srng.random(n_sessions) * (span_end - span_start)
    timestamps = timestamps[np.lexsort((timestamps, session_user))]
    gaps = srng.uniform(PLAY_SECONDS - 60.0, PLAY_SECONDS + 60.0, size=n_items)
    elapsed = np.cumsum(gaps) - gaps
    times = np.repeat(timestamps, lengths) + (elapsed - np.repeat(elapsed[indptr[:-1]], lengths))
    return _SessionFrame(
        session_user=session_user,
        lengths=lengths,
        indptr=indptr,
        timestamps=timestamps,
        times=times,
    )


@dataclass(frozen=True)
class _Week:
    """What can be drawn in one week: the per-genre cumulative weights (`_genre_cum`), the
    popularity envelope (None without time dynamics) and each artist's playable tracks."""

    cum: NDArray[np.float64]
    envelope: NDArray[np.float64] | None
    artist_playable: NDArray[np.int64]


@dataclass(frozen=True)
class _SamplingTable:
    """The tracks sorted by (genre, artist, warm first, oldest first), so that the tracks of an
    artist that can be played at a time are a prefix of its run; columns suffixed `_at` are in
    that order."""

    order: NDArray[np.int64]  # track row of each position
    sorted_genre: NDArray[np.int32]
    genre_start: NDArray[np.int64]
    genre_end: NDArray[np.int64]
    artist_first: NDArray[np.int64]  # each artist's first position
    pop_at: NDArray[np.float64]
    release_at: NDArray[np.float64]
    half_life_at: NDArray[np.float64]
    warm_at: NDArray[np.bool_]
    artist_at: NDArray[np.int32]
    peak_at: NDArray[np.float64]  # the age at which a track is most popular (its curve's peak)

    @classmethod
    def of(cls, c: SyntheticCatalogue) -> _SamplingTable:
        n_tracks = c.n_tracks
        order = np.lexsort((c.release, c.cold, c.track_artist, c.track_genre))
        sorted_genre = c.track_genre[order]
        position = np.empty(n_tracks, dtype=np.int64)
        position[order] = np.arange(n_tracks)
        artist_first = np.full(c.n_artists, n_tracks, dtype=np.int64)
        np.minimum.at(artist_first, c.track_artist, position)
        half_life_at = c.half_life[order]
        rise = RISE_DAYS * DAY
        return cls(
            order=order,
            sorted_genre=sorted_genre,
            genre_start=np.searchsorted(sorted_genre, np.arange(c.n_genres), side="left"),
            genre_end=np.searchsorted(sorted_genre, np.arange(c.n_genres), side="right"),
            artist_first=artist_first,
            pop_at=c.track_pop[order],
            release_at=c.release[order],
            half_life_at=half_life_at,
            warm_at=~c.cold[order],
            artist_at=c.track_artist[order],
            peak_at=rise * np.log1p(half_life_at / (rise * math.log(2.0))),
        )

    def week(self, *, lo: float, hi: float, time_dynamics: bool) -> _Week:
        """The week [lo, hi): with time dynamics a track is drawn by its popularity at its peak
        within the week (the envelope) and tracks not out yet are not drawn."""
        playable = self.warm_at
        envelope = None
        weights = self.pop_at
        if time_dynamics:
            out = self.release_at > lo  # not out yet (releases fall on week starts)
            envelope = _curve(
                np.clip(self.peak_at, lo - self.release_at, hi - self.release_at),
                self.half_life_at,
            )
            envelope[out] = 0.0
            weights = self.pop_at * envelope
            playable = self.warm_at & ~out
        cum = _genre_cum(weights, self.sorted_genre, self.genre_start, self.genre_end)
        n_artists = len(self.artist_first)
        artist_playable = np.bincount(self.artist_at, weights=playable, minlength=n_artists)
        return _Week(cum=cum, envelope=envelope, artist_playable=artist_playable.astype(np.int64))

    def sample_genre(
        self, srng: np.random.Generator, genres: NDArray[np.int64], cum: NDArray[np.float64]
    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Positions of one track per genre, drawn by the weights behind `cum`, in increasing
        order, and the permutation of `genres` they answer (sorted keys walk the table in
        order, which is much faster on a large catalogue than keys in random order)."""
        keys = genres + srng.random(len(genres))
        by_key = np.argsort(keys)
        idx = np.searchsorted(cum, keys[by_key], side="right")
        return np.minimum(idx, len(self.order) - 1), by_key

    def draw_tracks(
        self,
        srng: np.random.Generator,
        genres: NDArray[np.int64],
        *,
        when: NDArray[np.float64],
        week: _Week,
    ) -> NDArray[np.int64]:
        """Positions of one track per genre, by popularity at `when`: drawn by the popularity
        at its peak within the week (`week.envelope`, behind `week.cum`) and kept with the ratio
        of the two (rejection sampling; without an envelope popularity does not change)."""
        pos, by_key = self.sample_genre(srng, genres, week.cum)
        if week.envelope is not None:
            self._redraw(srng, pos, genres=genres[by_key], when=when[by_key], week=week)
        out = np.empty(len(pos), dtype=np.int64)
        out[by_key] = pos
        return out

    def _redraw(
        self,
        srng: np.random.Generator,
        pos: NDArray[np.int64],
        *,
        genres: NDArray[np.int64],
        when: NDArray[np.float64],
        week: _Week,
    ) -> None:
        """Rejection rounds over `pos` (in place): each pick is kept with the ratio of its
        popularity at `when` to its envelope, else drawn again."""
        assert week.envelope is not None
        redo = np.arange(len(pos))
        for _ in range(MAX_REDRAWS):
            p = pos[redo]
            now = _curve(when[redo] - self.release_at[p], self.half_life_at[p])
            keep = srng.random(len(redo)) * np.maximum(week.envelope[p], 1e-300) < now
            redo = redo[~keep]
            if not len(redo):
                break
            again, by = self.sample_genre(srng, genres[redo], week.cum)
            pos[redo[by]] = again


class _Player:
    """Plays the sessions step by step: each play stays in the session's genre, sometimes
    drifts to a neighbouring or another favourite genre, and sometimes plays the previous
    play's artist again."""

    def __init__(
        self,
        srng: np.random.Generator,
        *,
        table: _SamplingTable,
        track_artist: NDArray[np.int32],
        listeners: Listeners,
        frame: _SessionFrame,
        genre: NDArray[np.int64],
    ) -> None:
        self.srng = srng
        self.table = table
        self.listeners = listeners
        self.frame = frame
        self.genre = genre  # each session's current genre
        self.n_genres = len(table.genre_start)
        self.track_artist = track_artist
        self.prev = np.zeros(len(frame.session_user), dtype=np.int64)  # each session's last track
        self.items = np.empty(int(frame.indptr[-1]), dtype=np.int32)

    def play_week(
        self, sessions: NDArray[np.int64], *, lo: float, hi: float, time_dynamics: bool
    ) -> None:
        week = self.table.week(lo=lo, hi=hi, time_dynamics=time_dynamics)
        session_lengths = self.frame.lengths[sessions]
        for step in range(int(session_lengths.max())):
            self._play_step(sessions[session_lengths > step], step=step, week=week)

    def _play_step(self, active: NDArray[np.int64], *, step: int, week: _Week) -> None:
        srng = self.srng
        cur, drift = self._drift(active)
        pos = np.empty(len(active), dtype=np.int64)
        draw = np.ones(len(active), dtype=bool)
        if step > 0:
            idx, again = self._same_artist(active, drift=drift, week=week)
            pos[idx] = again
            draw[idx] = False
        when = self.frame.timestamps[active[draw]]
        pos[draw] = self.table.draw_tracks(srng, cur[draw], when=when, week=week)
        track = self.table.order[pos]
        self.items[self.frame.indptr[active] + step] = track
        self.prev[active] = track

    def _drift(self, active: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
        """The genre of each active session's next play, and which of them drifted."""
        srng = self.srng
        cur = self.genre[active]
        drift = srng.random(len(active)) < 0.08
        if drift.any():
            users = self.frame.session_user[active[drift]]
            ring = (cur[drift] + srng.choice([-1, 1], size=int(drift.sum()))) % self.n_genres
            favourite = self.listeners.favourite_genre
            cur[drift] = np.where(srng.random(len(users)) < 0.5, ring, favourite(srng, users))
            self.genre[active] = cur
        return cur, drift

    def _same_artist(
        self, active: NDArray[np.int64], *, drift: NDArray[np.bool_], week: _Week
    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Which active sessions play the previous play's artist again (indexes into `active`)
        and their positions: one of the artist's tracks out by now, uniformly."""
        srng = self.srng
        again = (srng.random(len(active)) < 0.2) & ~drift
        pa = self.track_artist[self.prev[active[again]]]
        n_ok = week.artist_playable[pa]
        ok = n_ok > 0
        idx = np.flatnonzero(again)[ok]
        offset = (srng.random(len(idx)) * n_ok[ok]).astype(np.int64)
        return idx, self.table.artist_first[pa[ok]] + offset


def _curve(age: NDArray[np.float64], half_life: NDArray[np.float64]) -> NDArray[np.float64]:
    """A track's popularity `age` seconds after its release, relative to its power-law
    popularity: none before the release, FLOOR at it, a rise over RISE_DAYS and a decay with
    `half_life` back down to FLOOR."""
    a = np.maximum(age, 0.0)
    burst = -np.expm1(-a / (RISE_DAYS * DAY)) * np.exp2(-a / half_life)
    return np.where(age >= 0.0, FLOOR + (1.0 - FLOOR) * burst, 0.0)


def _genre_cum(
    weights: NDArray[np.float64],
    sorted_genre: NDArray[np.int32],
    genre_start: NDArray[np.int64],
    genre_end: NDArray[np.int64],
) -> NDArray[np.float64]:
    """For tracks sorted by genre: genre + the share of the genre's weight up to the track
    (1 at a genre's last track), for `searchsorted(cum, genre + u)`. A genre without weight
    is drawn from uniformly."""
    cs = np.concatenate([[0.0], np.cumsum(weights)])
    before = cs[genre_start]
    total = cs[genre_end] - before
    frac = (cs[1:] - before[sorted_genre]) / np.where(total > 0, total, 1.0)[sorted_genre]
    for g in np.flatnonzero(total <= 0):
        size = genre_end[g] - genre_start[g]
        frac[genre_start[g] : genre_end[g]] = np.arange(1, size + 1) / max(size, 1)
    nonempty = genre_end > genre_start
    frac[genre_end[nonempty] - 1] = 1.0
    return sorted_genre + frac
