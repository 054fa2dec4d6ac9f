"""Held-out splits: validation users for fitting ensemble weights, test data for evaluation.

A basket is the set of distinct items (track or artist rows) that were listened to together:
one session where the source has real sessions, otherwise all of one user's items.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from indexes.datasets.shape import Dataset

Baskets = list[NDArray[np.int32]]


@dataclass(frozen=True)
class Split:
    train: Dataset
    baskets: dict[str, Baskets]  # entity -> held-out baskets
    description: str


def _to_entity(data: Dataset, rows: NDArray[np.int32], entity: str) -> NDArray[np.int32]:
    if entity == "artists":
        rows = data.items.track_artist[rows]
    return np.unique(rows).astype(np.int32)


def user_baskets(data: Dataset, users: NDArray[np.int64], *, entity: str) -> Baskets:
    m = data.interactions
    out = []
    for u in users.tolist():
        rows = m.indices[m.indptr[u] : m.indptr[u + 1]].astype(np.int32)
        basket = _to_entity(data, rows, entity)
        if len(basket) >= 2:
            out.append(basket)
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
    for entity in ("tracks", "artists"):
        if data.sequences.ordered:
            seq_user = data.sequences.user
            seq_mask = (seq_user >= 0) & held[np.clip(seq_user, 0, None)]
            baskets[entity] = sequence_baskets(data, seq_mask, entity=entity)
        else:
            baskets[entity] = user_baskets(data, users, entity=entity)
    return Split(
        train=data.select_users(~held),
        baskets=baskets,
        description=f"{len(users)} validation users held out",
    )


def evaluation_split(data: Dataset, *, test_fraction: float, seed: int) -> Split:
    """Sessions split by time where there are timestamps, users split at random otherwise."""
    if data.sequences.ordered and data.sequences.has_time and len(data.sequences) >= 10:
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
    baskets = {e: user_baskets(data, users, entity=e) for e in ("tracks", "artists")}
    return Split(
        train=data.select_users(~held),
        baskets=baskets,
        description=f"users split at random: {len(users)} of {data.n_users} users held out",
    )
