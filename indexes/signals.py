"""The plain signals next to the vector models: popularity (all-time and recency-weighted),
co-occurrence (cosine and counts) and sequential transitions (raw and recency-weighted).

Each is a candidate source and a scoring feature of the ensemble (`indexes.ensemble`); the
bundle stores them as neighbour tables (CSR, top N per item) and per-item arrays. Which of them
count for how much is not decided here: the ensemble fit learns it on a validation window.

Recency weight of a play at time t, as of time T, for half-life h: 2 ** (-(T - t) / h). With
several half-lives each is its own feature, so validation decides how fast the data moves.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy import sparse

from indexes.datasets.shape import Dataset, following
from indexes.models.cooccurrence import (
    Neighbours,
    cooccurrence_neighbours,
    cooccurrence_tables,
    popularity,
)

DAY = 86400.0

COOC = "cooc"  # co-occurrence cosine (factors popularity out: suits "similar")
COOC_COUNT = "cooc_count"  # co-occurrence counts (sessions, or users, holding both)
TRANS = "trans"  # b played right after a in a session, counted
TRANS_RECENT = "trans_recent"  # the same, each transition recency-weighted
POPULARITY = "popularity"  # listeners (baskets) per item, all time

# how a table's stored scores become a feature value
TRANSFORMS = {COOC: "identity", COOC_COUNT: "log1p", TRANS: "log1p", TRANS_RECENT: "log1p"}


def recent_name(half_life_days: float) -> str:
    return f"recent_{half_life_days:g}d"


@dataclass(frozen=True)
class SignalConfig:
    top_n: int = 100  # neighbours kept per item in each table
    window: int = 200  # session co-occurrence: plays of one basket at most (longer: cut)
    # recency-weighted popularity, one feature per half-life (days)
    half_lives_days: tuple[float, ...] = (7.0, 28.0, 90.0, 365.0)
    transition_half_life_days: float = 90.0


@dataclass
class EntitySignals:
    tables: dict[str, Neighbours] = field(default_factory=dict)
    popularity: dict[str, NDArray[np.float32]] = field(default_factory=dict)


@dataclass
class Signals:
    entities: dict[str, EntitySignals]
    as_of: float | None  # unix seconds the recency weights are taken at; None: no times
    time_span: tuple[float, float] | None


def compute_signals(data: Dataset, *, config: SignalConfig, as_of: float | None = None) -> Signals:
    """Every plain signal of `data`, for tracks and artists.

    Without per-play times there is no recency (only all-time popularity and raw transitions);
    without ordered sequences there are no transitions."""
    span = data.sequences.time_span()
    if span is not None and as_of is None:
        as_of = span[1]
    if span is None:
        as_of = None
    artist_of = data.items.track_artist
    seqs = data.sequences
    baskets = {"tracks": data.interactions, "artists": data.artist_interactions()}
    # counts are of sessions that played both where there are sessions ("what plays
    # together"), a long session cut into windows of `window` consecutive plays (co-occurrence
    # keeps at most that many items of a basket, and would otherwise drop a long session's
    # later tracks); cosine stays over listeners (users), which suits "similar"
    windows = _windows(seqs.indptr, config.window) if seqs.ordered else None
    out: dict[str, EntitySignals] = {}
    for entity, matrix in baskets.items():
        sig = EntitySignals()
        n = matrix.shape[1]
        items = seqs.items if entity == "tracks" else artist_of[seqs.items]
        if windows is not None:
            sig.tables[COOC] = cooccurrence_neighbours(
                matrix, top_n=config.top_n, name=f"co-occurrence {entity}"
            )
            sig.tables[COOC_COUNT] = cooccurrence_tables(
                session_baskets(windows, items, n=n),
                top_n=config.top_n,
                max_per_basket=config.window,
                name=f"session co-occurrence {entity}",
            )[1]
        else:
            sig.tables[COOC], sig.tables[COOC_COUNT] = cooccurrence_tables(
                matrix, top_n=config.top_n, name=f"co-occurrence {entity}"
            )
        sig.popularity[POPULARITY] = popularity(matrix)
        if as_of is not None and seqs.times is not None:
            age = as_of - seqs.times  # a play after as_of (BuildConfig.as_of) weighs nothing
            for h in config.half_lives_days:
                w = np.where(age >= 0, np.exp2(-np.maximum(age, 0.0) / (h * DAY)), 0.0)
                sig.popularity[recent_name(h)] = np.bincount(items, weights=w, minlength=n).astype(
                    np.float32
                )
        if seqs.ordered and len(items) > 1:
            a, b, at = _transitions(seqs.indptr, items, seqs.times)
            if entity == "artists":
                keep = a != b  # an artist following itself says nothing about related artists
                a, b, at = a[keep], b[keep], (at[keep] if at is not None else None)
            sig.tables[TRANS] = top_per_row(a, b, np.ones(len(a)), n=n, top_n=config.top_n)
            if as_of is not None and at is not None:
                h = config.transition_half_life_days * DAY
                w = np.where(at <= as_of, np.exp2(-np.maximum(as_of - at, 0.0) / h), 0.0)
                sig.tables[TRANS_RECENT] = top_per_row(a, b, w, n=n, top_n=config.top_n)
        out[entity] = sig
    return Signals(entities=out, as_of=as_of, time_span=span)


def _windows(indptr: NDArray[np.int64], window: int) -> NDArray[np.int64]:
    """Sequence boundaries with every sequence longer than `window` cut into consecutive
    pieces of at most `window` items."""
    lengths = np.diff(indptr)
    pieces = np.maximum(1, -(-lengths // window))
    starts = np.repeat(indptr[:-1], pieces) + window * (
        np.arange(int(pieces.sum())) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    )
    return np.append(starts, indptr[-1]).astype(np.int64)


def session_baskets(
    indptr: NDArray[np.int64], items: NDArray[np.int32], *, n: int
) -> sparse.csr_matrix:
    """Sessions x items, 1 where the session played the item."""
    rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    m = sparse.csr_matrix(
        (np.ones(len(items), dtype=np.float32), (rows, items)),
        shape=(len(indptr) - 1, n),
        dtype=np.float32,
    )
    m.sum_duplicates()
    return m


def _transitions(
    indptr: NDArray[np.int64], items: NDArray[np.int32], times: NDArray[np.float64] | None
) -> tuple[NDArray[np.int32], NDArray[np.int32], NDArray[np.float64] | None]:
    """(a, b, time of b) for every b that directly follows a within one sequence."""
    follow = following(indptr, len(items))
    a, b = items[follow - 1], items[follow]
    keep = a != b  # a repeat of the same item is not a transition
    at = times[follow][keep] if times is not None else None
    return a[keep].astype(np.int32), b[keep].astype(np.int32), at


def top_per_row(
    rows: NDArray[np.int32],
    cols: NDArray[np.int32],
    weights: NDArray[np.float64],
    *,
    n: int,
    top_n: int,
) -> Neighbours:
    """Summed weights of (row, col) pairs, the `top_n` heaviest cols of each row, heaviest first
    (ties by col)."""
    m = sparse.csr_matrix(
        (np.asarray(weights, dtype=np.float64), (rows, cols)), shape=(n, n), dtype=np.float64
    )
    m.sum_duplicates()
    m.eliminate_zeros()
    r = np.repeat(np.arange(n, dtype=np.int64), np.diff(m.indptr))
    order = np.lexsort((m.indices, -m.data, r))
    rank = np.arange(len(order)) - m.indptr[r[order]]
    keep = order[rank < top_n]
    counts = np.bincount(r[keep], minlength=n)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return Neighbours(
        indptr=indptr,
        indices=m.indices[keep].astype(np.int32),
        scores=m.data[keep].astype(np.float32),
    )
