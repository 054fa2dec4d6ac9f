"""The internal shape that every loader produces and every model reads.

- `Items`: the catalogue. Tracks (id, name, artist, tags) and artists (id, name). Data sets that
  only know artists (HetRec Last.fm) get one pseudo-track per artist, so the same pipeline serves
  both "similar tracks" and "related artists".
- interactions: a users x tracks CSR matrix of play counts.
- `Sequences`: ordered sessions or playlists of track rows, with a user and a start time where the
  source has them. Sources without order get one sequence per user (its tracks by play count), with
  `ordered=False`.

Rows are dense integer indexes; external ids live in `Items.track_ids` etc.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import sparse

from indexes.datasets.report import LoadReport

IntArray = NDArray[np.int32]


class Interner:
    """Maps external string ids to dense rows in order of first appearance."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.ids: list[str] = []

    def get(self, key: str) -> int:
        row = self.index.get(key)
        if row is None:
            row = len(self.ids)
            self.index[key] = row
            self.ids.append(key)
        return row

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, key: object) -> bool:
        return key in self.index


@dataclass(frozen=True)
class Items:
    track_ids: NDArray[np.str_]
    track_names: NDArray[np.str_]
    track_artist: IntArray
    artist_ids: NDArray[np.str_]
    artist_names: NDArray[np.str_]
    tag_names: NDArray[np.str_]
    track_tags: sparse.csr_matrix  # tracks x tags, float32 weights

    @property
    def n_tracks(self) -> int:
        return len(self.track_ids)

    @property
    def n_artists(self) -> int:
        return len(self.artist_ids)

    def track_to_artist(self) -> sparse.csr_matrix:
        """One-hot tracks x artists matrix."""
        n = self.n_tracks
        return sparse.csr_matrix(
            (np.ones(n, dtype=np.float32), (np.arange(n), self.track_artist)),
            shape=(n, self.n_artists),
        )

    def artist_tags(self) -> sparse.csr_matrix:
        """Artists x tags: the sum of the artist's track tags."""
        return sparse.csr_matrix(self.track_to_artist().T @ self.track_tags, dtype=np.float32)

    def validate(self) -> None:
        n = self.n_tracks
        if len(self.track_names) != n or len(self.track_artist) != n:
            raise ValueError("track columns differ in length")
        if n and (self.track_artist.min() < 0 or self.track_artist.max() >= self.n_artists):
            raise ValueError("track_artist points outside the artist table")
        if self.track_tags.shape != (n, len(self.tag_names)):
            raise ValueError("track_tags has the wrong shape")


@dataclass(frozen=True)
class Sequences:
    """Ordered track lists, CSR-style: sequence s is items[indptr[s]:indptr[s+1]]."""

    indptr: NDArray[np.int64]
    items: IntArray
    user: IntArray  # user row per sequence, -1 where unknown
    timestamp: NDArray[np.float64]  # start time (unix seconds) per sequence, NaN where unknown
    ordered: bool  # True when the order is real listening order
    # when each item of `items` was played (unix seconds, parallel to `items`); None where the
    # source has no per-play times. The time-aware signals (recency, decayed transitions) and the
    # time split need them.
    times: NDArray[np.float64] | None = None

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def __iter__(self) -> Iterator[IntArray]:
        for s in range(len(self)):
            yield self.items[self.indptr[s] : self.indptr[s + 1]]

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def has_time(self) -> bool:
        return bool(len(self.timestamp)) and not bool(np.isnan(self.timestamp).any())

    @property
    def has_item_times(self) -> bool:
        """True when every played item has a finite time (what the time-aware signals need)."""
        return (
            self.times is not None
            and len(self.times) == len(self.items)
            and len(self.items) > 0
            and bool(np.isfinite(self.times).all())
        )

    def time_span(self) -> tuple[float, float] | None:
        """(first, last) play time in unix seconds, None without per-play times."""
        if not self.has_item_times:
            return None
        assert self.times is not None
        return float(self.times.min()), float(self.times.max())

    def select(self, mask: NDArray[np.bool_]) -> Sequences:
        lengths = np.diff(self.indptr)[mask]
        starts = self.indptr[:-1][mask]
        take = _ranges(starts, lengths)
        indptr = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        return Sequences(
            indptr=indptr,
            items=self.items[take],
            user=self.user[mask],
            timestamp=self.timestamp[mask],
            ordered=self.ordered,
            times=None if self.times is None else self.times[take],
        )


def following(indptr: NDArray[np.int64], n_items: int) -> NDArray[np.int64]:
    """Positions of the items that follow another item of their sequence (every position but
    the first of each non-empty sequence)."""
    follows = np.ones(n_items, dtype=bool)
    follows[indptr[:-1][np.diff(indptr) > 0]] = False
    return np.flatnonzero(follows)


def _ranges(starts: NDArray[np.int64], lengths: NDArray[np.int64]) -> NDArray[np.int64]:
    """Concatenation of arange(start, start + length) for each pair, vectorised."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(lengths)
    offsets = np.repeat(starts - (ends - lengths), lengths)
    return np.arange(total, dtype=np.int64) + offsets


@dataclass(frozen=True)
class Dataset:
    name: str
    items: Items
    user_ids: NDArray[np.str_]
    interactions: sparse.csr_matrix  # users x tracks play counts, float32
    sequences: Sequences
    interactions_from_sequences: bool  # True: interactions are the sum of the sequences
    tracks_are_artists: bool = False  # True: one pseudo-track per artist (artist-only sources)
    report: LoadReport = field(default_factory=LoadReport)
    # what generated data knows for sure (synthetic: "track_genre", "user_genres"); empty for
    # real data. Benchmarks use it to simulate listeners; no model sees it.
    truth: dict[str, Any] = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    def artist_interactions(self) -> sparse.csr_matrix:
        """Users x artists play counts."""
        return sparse.csr_matrix(self.interactions @ self.items.track_to_artist(), dtype=np.float32)

    def track_plays(self) -> NDArray[np.float32]:
        return np.asarray(self.interactions.sum(axis=0), dtype=np.float32).ravel()

    def track_listeners(self) -> NDArray[np.float32]:
        return np.asarray((self.interactions > 0).sum(axis=0), dtype=np.float32).ravel()

    def select_users(self, mask: NDArray[np.bool_]) -> Dataset:
        """The data set restricted to the users in `mask` (items stay; their rows do not move)."""
        keep = np.flatnonzero(mask)
        inter = sparse.csr_matrix(self.interactions[keep])
        seq_user = self.sequences.user
        seq_mask = (seq_user >= 0) & mask[np.clip(seq_user, 0, None)]
        seqs = self.sequences.select(seq_mask)
        remap = np.full(self.n_users, -1, dtype=np.int32)
        remap[keep] = np.arange(len(keep), dtype=np.int32)
        seqs = replace(seqs, user=remap[seqs.user])
        return replace(self, user_ids=self.user_ids[keep], interactions=inter, sequences=seqs)

    def select_sequences(self, mask: NDArray[np.bool_]) -> Dataset:
        """The data set restricted to some sequences; interactions follow when derived from them."""
        seqs = self.sequences.select(mask)
        inter = self.interactions
        if self.interactions_from_sequences:
            inter = interactions_from_sequences(
                seqs, n_users=self.n_users, n_tracks=self.items.n_tracks
            )
        return replace(self, interactions=inter, sequences=seqs)

    def summary(self) -> dict[str, Any]:
        seq_lengths = np.diff(self.sequences.indptr)
        return {
            "name": self.name,
            "tracks": self.items.n_tracks,
            "artists": self.items.n_artists,
            "tags": len(self.items.tag_names),
            "users": self.n_users,
            "interactions": int(self.interactions.nnz),
            "plays": float(self.interactions.sum()),
            "sequences": len(self.sequences),
            "sequence_items": self.sequences.n_items,
            "mean_sequence_length": float(seq_lengths.mean()) if len(seq_lengths) else 0.0,
            "ordered_sequences": self.sequences.ordered,
            "tracks_are_artists": self.tracks_are_artists,
            "bad_rows": self.report.bad,
        }


def dataset_from_sequences(
    *, name: str, items: Items, user_ids: list[str], sequences: Sequences, report: LoadReport
) -> Dataset:
    """A data set whose interactions are its sequences' plays (the loaders of ordered logs)."""
    return Dataset(
        name=name,
        items=items,
        user_ids=np.asarray(user_ids, dtype=str),
        interactions=interactions_from_sequences(
            sequences, n_users=len(user_ids), n_tracks=items.n_tracks
        ),
        sequences=sequences,
        interactions_from_sequences=True,
        report=report,
    )


def dataset_from_counts(
    *,
    name: str,
    items: Items,
    user_ids: list[str],
    interactions: sparse.csr_matrix,
    report: LoadReport,
    times: dict[tuple[int, int], float] | None = None,
    tracks_are_artists: bool = False,
) -> Dataset:
    """A data set of play counts without listening order (the loaders of aggregated counts):
    one unordered sequence per user (`sequences_from_interactions`, with `times`)."""
    return Dataset(
        name=name,
        items=items,
        user_ids=np.asarray(user_ids, dtype=str),
        interactions=interactions,
        sequences=sequences_from_interactions(interactions, times=times),
        interactions_from_sequences=False,
        tracks_are_artists=tracks_are_artists,
        report=report,
    )


def interactions_from_sequences(
    seqs: Sequences, *, n_users: int, n_tracks: int
) -> sparse.csr_matrix:
    """Users x tracks play counts: one play per sequence position."""
    lengths = np.diff(seqs.indptr)
    users = np.repeat(seqs.user, lengths)
    known = users >= 0
    data = np.ones(int(known.sum()), dtype=np.float32)
    m = sparse.csr_matrix(
        (data, (users[known], seqs.items[known])), shape=(n_users, n_tracks), dtype=np.float32
    )
    m.sum_duplicates()
    return m


def sequences_from_interactions(
    interactions: sparse.csr_matrix, times: dict[tuple[int, int], float] | None = None
) -> Sequences:
    """One unordered sequence per user: the user's tracks, most played first.

    `times` maps (user row, track row) to when the user (last) played the track, in unix seconds.
    With it the sequences get `times` parallel to `items` (NaN for a pair it lacks) and each
    sequence's `timestamp` is its earliest time (NaN for an empty sequence); without it both stay
    unknown (times None, timestamps NaN)."""
    m = sparse.csr_matrix(interactions)
    m.sort_indices()
    n_users = m.shape[0]
    rows = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(m.indptr))
    order = np.lexsort((-m.data, rows))
    items = m.indices[order].astype(np.int32)
    start = np.full(n_users, np.nan)
    item_times = None
    if times is not None:
        users = rows[order]
        item_times = np.fromiter(
            (times.get((int(u), int(t)), np.nan) for u, t in zip(users, items, strict=True)),
            dtype=np.float64,
            count=len(items),
        )
        np.fmin.at(start, users, item_times)  # fmin skips NaN: the earliest known time
    return Sequences(
        indptr=m.indptr.astype(np.int64),
        items=items,
        user=np.arange(n_users, dtype=np.int32),
        timestamp=start,
        ordered=False,
        times=item_times,
    )


def make_items(
    *,
    track_ids: list[str],
    track_names: list[str],
    track_artist: list[int] | IntArray,
    artist_ids: list[str],
    artist_names: list[str],
    tag_names: list[str],
    tag_rows: list[int] | NDArray[np.integer[Any]],
    tag_cols: list[int] | NDArray[np.integer[Any]],
    tag_weights: list[float] | NDArray[np.float32],
) -> Items:
    """Builds and validates `Items` from plain lists (duplicate tag entries are summed)."""
    n_tracks = len(track_ids)
    tags = sparse.csr_matrix(
        (
            np.asarray(tag_weights, dtype=np.float32),
            (np.asarray(tag_rows, dtype=np.int64), np.asarray(tag_cols, dtype=np.int64)),
        ),
        shape=(n_tracks, len(tag_names)),
        dtype=np.float32,
    )
    tags.sum_duplicates()
    items = Items(
        track_ids=np.asarray(track_ids, dtype=str),
        track_names=np.asarray(track_names, dtype=str),
        track_artist=np.asarray(track_artist, dtype=np.int32),
        artist_ids=np.asarray(artist_ids, dtype=str),
        artist_names=np.asarray(artist_names, dtype=str),
        tag_names=np.asarray(tag_names, dtype=str),
        track_tags=tags,
    )
    items.validate()
    return items
