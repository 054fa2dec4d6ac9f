"""Held-out splits: validation users for fitting ensemble weights, test data for evaluation.

A basket is the set of distinct items (track or artist rows) that were listened to together:
one session where the source has real sessions, otherwise all of one user's items.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray
from scipy import sparse

from indexes.datasets.shape import Dataset, Sequences, following, interactions_from_sequences

Baskets = list[NDArray[np.int32]]


@dataclass(frozen=True)
class Split:
    train: Dataset
    baskets: dict[str, Baskets]  # entity -> held-out baskets
    description: str
    # user splits: entity -> per basket, its items by the user's plays, most played first (the
    # queries of an evaluation are a held-out user's top items)
    ranked: dict[str, Baskets] | None = None


def _to_entity(data: Dataset, rows: NDArray[np.int32], entity: str) -> NDArray[np.int32]:
    if entity == "artists":
        rows = data.items.track_artist[rows]
    return np.unique(rows).astype(np.int32)


def user_baskets(data: Dataset, users: NDArray[np.int64], *, entity: str) -> Baskets:
    return [np.sort(b) for b in ranked_user_baskets(data, users, entity=entity)]


def ranked_user_baskets(data: Dataset, users: NDArray[np.int64], *, entity: str) -> Baskets:
    """Each user's distinct items (2 or more), most played first (ties by row)."""
    m = data.interactions if entity == "tracks" else data.artist_interactions()
    m = sparse.csr_matrix(m)
    out = []
    for u in users.tolist():
        rows = m.indices[m.indptr[u] : m.indptr[u + 1]].astype(np.int32)
        plays = m.data[m.indptr[u] : m.indptr[u + 1]]
        keep = plays > 0
        rows, plays = rows[keep], plays[keep]
        if len(rows) >= 2:
            out.append(rows[np.lexsort((rows, -plays))])
    return out


def sequence_baskets(data: Dataset, mask: NDArray[np.bool_], *, entity: str) -> Baskets:
    seqs = data.sequences
    out = []
    for s in np.flatnonzero(mask).tolist():
        basket = _to_entity(data, seqs.items[seqs.indptr[s] : seqs.indptr[s + 1]], entity)
        if len(basket) >= 2:
            out.append(basket)
    return out


def _sample_users(
    data: Dataset, *, fraction: float, max_users: int, seed: int, min_users: int = 0
) -> NDArray[np.bool_]:
    rng = np.random.default_rng(seed)
    eligible = np.flatnonzero(np.diff(data.interactions.indptr) >= 2)
    n = min(max_users, max(min_users, round(len(eligible) * fraction)), len(eligible) // 2)
    mask = np.zeros(data.n_users, dtype=bool)
    if n > 0:
        mask[rng.choice(eligible, size=n, replace=False)] = True
    return mask


def validation_split(
    data: Dataset, *, fraction: float, min_users: int, max_users: int, seed: int
) -> Split:
    """Holds out a random sample of users; their baskets label the ensemble's training pairs."""
    held = _sample_users(
        data, fraction=fraction, min_users=min_users, max_users=max_users, seed=seed
    )
    users = np.flatnonzero(held)
    baskets: dict[str, Baskets] = {}
    ranked: dict[str, Baskets] | None = None
    if data.sequences.ordered:
        seq_user = data.sequences.user
        seq_mask = (seq_user >= 0) & held[np.clip(seq_user, 0, None)]
        for entity in ("tracks", "artists"):
            baskets[entity] = sequence_baskets(data, seq_mask, entity=entity)
    else:
        ranked = {e: ranked_user_baskets(data, users, entity=e) for e in ("tracks", "artists")}
        baskets = {e: [np.sort(b) for b in r] for e, r in ranked.items()}
    return Split(
        train=data.select_users(~held),
        baskets=baskets,
        description=f"{len(users)} validation users held out",
        ranked=ranked,
    )


def evaluation_split(
    data: Dataset, *, test_fraction: float, seed: int, by_users: bool = False
) -> Split:
    """Users split at random (`by_users`, or without session times); else sessions split by
    their start time, the last `test_fraction` held out."""
    if (
        not by_users
        and data.sequences.ordered
        and data.sequences.has_time
        and len(data.sequences) >= 10
    ):
        ts = data.sequences.timestamp
        cut = float(np.quantile(ts, 1.0 - test_fraction))
        test = ts > cut
        baskets = {e: sequence_baskets(data, test, entity=e) for e in ("tracks", "artists")}
        return Split(
            train=data.select_sequences(~test),
            baskets=baskets,
            description=f"sessions split by time: {int(test.sum())} sessions after the "
            f"{1 - test_fraction:.0%} quantile are held out",
        )
    held = _sample_users(data, fraction=test_fraction, max_users=data.n_users, seed=seed)
    users = np.flatnonzero(held)
    ranked = {e: ranked_user_baskets(data, users, entity=e) for e in ("tracks", "artists")}
    return Split(
        train=data.select_users(~held),
        baskets={e: [np.sort(b) for b in r] for e, r in ranked.items()},
        description=f"users split at random: {len(users)} of {data.n_users} users held out",
        ranked=ranked,
    )


# ---------------------------------------------------------------------------------------------
# time splits: train on the past, choose on a window before the cut, test on what came after


@dataclass(frozen=True)
class NextTrackPairs:
    """(previous, next) item rows of consecutive plays within one sequence, with the next
    play's time: what a radio is judged by (given the track playing, is the next one in the
    list?)."""

    prev: NDArray[np.int32]
    next: NDArray[np.int32]
    time: NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.prev)

    def take(self, mask: NDArray[np.bool_]) -> NextTrackPairs:
        return NextTrackPairs(prev=self.prev[mask], next=self.next[mask], time=self.time[mask])

    def to_artists(self, artist_of: NDArray[np.int32]) -> NextTrackPairs:
        """The same pairs as artist rows, where the artist changes."""
        a, b = artist_of[self.prev], artist_of[self.next]
        keep = a != b
        return NextTrackPairs(prev=a[keep], next=b[keep], time=self.time[keep])


def time_splittable(data: Dataset) -> bool:
    return data.sequences.ordered and data.sequences.has_item_times


def next_track_pairs(data: Dataset, *, start: float, end: float) -> NextTrackPairs:
    """Consecutive plays (a, b) of one sequence whose b was played in [start, end)."""
    seqs = data.sequences
    assert seqs.times is not None
    t = seqs.times
    idx = following(seqs.indptr, len(seqs.items))
    idx = idx[(t[idx] >= start) & (t[idx] < end)]
    a, b = seqs.items[idx - 1], seqs.items[idx]
    keep = a != b
    return NextTrackPairs(
        prev=a[keep].astype(np.int32), next=b[keep].astype(np.int32), time=t[idx][keep]
    )


def played_before(data: Dataset, cut: float) -> Dataset:
    """The data set as it was known at `cut`: only plays before it (a sequence that straddles
    the cut keeps its first part); interactions follow the sequences. Items keep their rows."""
    seqs = data.sequences
    if seqs.times is None:
        raise ValueError("a time cut needs per-play times")
    if not data.interactions_from_sequences:
        raise ValueError("a time cut needs interactions derived from the sequences")
    keep_item = seqs.times < cut
    seq_of = np.repeat(np.arange(len(seqs)), np.diff(seqs.indptr))
    lengths = np.bincount(seq_of[keep_item], minlength=len(seqs)).astype(np.int64)
    indptr = np.zeros(len(seqs) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    # plays are in time order within a sequence, so the kept ones are a prefix of it
    cut_seqs = Sequences(
        indptr=indptr,
        items=seqs.items[keep_item],
        user=seqs.user,
        timestamp=seqs.timestamp,
        ordered=seqs.ordered,
        times=seqs.times[keep_item],
    ).select(lengths > 0)
    inter = interactions_from_sequences(
        cut_seqs, n_users=data.n_users, n_tracks=data.items.n_tracks
    )
    return replace(data, interactions=inter, sequences=cut_seqs)


def known_at(data: Dataset, cut: float) -> tuple[Dataset, NDArray[np.int64]]:
    """The data set as a build at `cut` would know it: the plays before it, and a catalogue of
    only the tracks played before it (and their artists), as an export of those plays would
    hold. Returns it and the new row of each old track row (-1: not known yet), so that pairs
    after the cut can be mapped (a track first played later is in no list)."""
    early = played_before(data, cut)
    played = np.zeros(data.items.n_tracks, dtype=bool)
    played[early.sequences.items] = True
    return restrict_tracks(early, played)


def restrict_tracks(data: Dataset, keep: NDArray[np.bool_]) -> tuple[Dataset, NDArray[np.int64]]:
    """The data set with only the tracks in `keep` (every play of the others must be gone) and
    the artists they have; rows are renumbered in order. Returns it and old row -> new row."""
    items = data.items
    track_row = np.full(items.n_tracks, -1, dtype=np.int64)
    track_row[keep] = np.arange(int(keep.sum()))
    seqs = data.sequences
    if (track_row[seqs.items] < 0).any():
        raise ValueError("restrict_tracks: a dropped track is still played")
    artists = np.unique(items.track_artist[keep])
    artist_row = np.full(items.n_artists, -1, dtype=np.int64)
    artist_row[artists] = np.arange(len(artists))
    new_items = replace(
        items,
        track_ids=items.track_ids[keep],
        track_names=items.track_names[keep],
        track_artist=artist_row[items.track_artist[keep]].astype(np.int32),
        artist_ids=items.artist_ids[artists],
        artist_names=items.artist_names[artists],
        track_tags=sparse.csr_matrix(items.track_tags[np.flatnonzero(keep)]),
    )
    new_items.validate()
    new_seqs = replace(seqs, items=track_row[seqs.items].astype(np.int32))
    inter = sparse.csr_matrix(sparse.csc_matrix(data.interactions)[:, np.flatnonzero(keep)])
    return replace(data, items=new_items, sequences=new_seqs, interactions=inter), track_row


def map_pairs(pairs: NextTrackPairs, track_row: NDArray[np.int64]) -> NextTrackPairs:
    """Pairs in the rows of a restricted catalogue (-1 where a track is not in it)."""
    return NextTrackPairs(
        prev=track_row[pairs.prev].astype(np.int32),
        next=track_row[pairs.next].astype(np.int32),
        time=pairs.time,
    )
