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

from indexes.bundle.layout import COOC, IDENTITY, LOG1P, POPULARITY
from indexes.bundle.neighbours import Neighbours
from indexes.config import SignalConfig
from indexes.datasets.shape import Dataset, Sequences, following
from indexes.models.cooccurrence import cooccurrence_neighbours, cooccurrence_tables, popularity

DAY = 86400.0

# COOC: co-occurrence cosine (factors popularity out: suits "similar"); POPULARITY: listeners
# (baskets) per item, all time. Both are in every bundle (`indexes.bundle.layout`).
COOC_COUNT = "cooc_count"  # co-occurrence counts (sessions, or users, holding both)
TRANS = "trans"  # b played right after a in a session, counted
TRANS_RECENT = "trans_recent"  # the same, each transition recency-weighted

# how a table's stored scores become a feature value
TRANSFORMS = {COOC: IDENTITY, COOC_COUNT: LOG1P, TRANS: LOG1P, TRANS_RECENT: LOG1P}


def recent_name(half_life_days: float) -> str:
    return f"recent_{half_life_days:g}d"


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
    seqs = data.sequences
    baskets = {"tracks": data.interactions, "artists": data.artist_interactions()}
    # counts are of sessions that played both where there are sessions ("what plays
    # together"), a long session cut into windows of `window` consecutive plays (co-occurrence
    # keeps at most that many items of a basket, and would otherwise drop a long session's
    # later tracks); cosine stays over listeners (users), which suits "similar"
    windows = _windows(seqs.indptr, config.window) if seqs.ordered else None
    out: dict[str, EntitySignals] = {}
    for entity, matrix in baskets.items():
        items = seqs.items if entity == "tracks" else data.items.track_artist[seqs.items]
        sig = EntitySignals()
        sig.tables.update(_cooccurrence(entity, matrix, items, windows=windows, config=config))
        sig.popularity[POPULARITY] = popularity(matrix)
        if as_of is not None and seqs.times is not None:
            sig.popularity.update(
                _recent_popularity(items, seqs.times, n=matrix.shape[1], as_of=as_of, config=config)
            )
        if seqs.ordered and len(items) > 1:
            sig.tables.update(
                _transitions_tables(
                    entity, seqs, items, n=matrix.shape[1], as_of=as_of, config=config
                )
            )
        out[entity] = sig
    return Signals(entities=out, as_of=as_of, time_span=span)


def _cooccurrence(
    entity: str,
    matrix: sparse.csr_matrix,
    items: NDArray[np.int32],
    *,
    windows: NDArray[np.int64] | None,
    config: SignalConfig,
) -> dict[str, Neighbours]:
    """COOC (cosine over listeners) and COOC_COUNT (over session windows where there are
    sessions, else over listeners too)."""
    name = f"co-occurrence {entity}"
    if windows is None:
        cos, count = cooccurrence_tables(matrix, top_n=config.top_n, name=name)
        return {COOC: cos, COOC_COUNT: count}
    return {
        COOC: cooccurrence_neighbours(matrix, top_n=config.top_n, name=name),
        COOC_COUNT: cooccurrence_tables(
            session_baskets(windows, items, n=matrix.shape[1]),
            top_n=config.top_n,
            max_per_basket=config.window,
            name=f"session {name}",
        )[1],
    }


def _recent_popularity(
    items: NDArray[np.int32],
    times: NDArray[np.float64],
    *,
    n: int,
    as_of: float,
    config: SignalConfig,
) -> dict[str, NDArray[np.float32]]:
    """Plays per item, each weighted by its recency, one array per half-life."""
    age = as_of - times  # a play after as_of (BuildConfig.as_of) weighs nothing
    out = {}
    for h in config.half_lives_days:
        w = np.where(age >= 0, np.exp2(-np.maximum(age, 0.0) / (h * DAY)), 0.0)
        out[recent_name(h)] = np.bincount(items, weights=w, minlength=n).astype(np.float32)
    return out


def _transitions_tables(
    entity: str,
    seqs: Sequences,
    items: NDArray[np.int32],
    *,
    n: int,
    as_of: float | None,
    config: SignalConfig,
) -> dict[str, Neighbours]:
    """TRANS (what followed what, counted) and, with times, TRANS_RECENT (recency-weighted)."""
    a, b, at = _transitions(seqs.indptr, items, seqs.times)
    if entity == "artists":
        keep = a != b  # an artist following itself says nothing about related artists
        a, b, at = a[keep], b[keep], (at[keep] if at is not None else None)
    out = {TRANS: top_per_row(a, b, np.ones(len(a)), n=n, top_n=config.top_n)}
    if as_of is not None and at is not None:
        h = config.transition_half_life_days * DAY
        w = np.where(at <= as_of, np.exp2(-np.maximum(as_of - at, 0.0) / h), 0.0)
        out[TRANS_RECENT] = top_per_row(a, b, w, n=n, top_n=config.top_n)
    return out


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
    return Neighbours.from_row_counts(
        np.bincount(r[keep], minlength=n),
        m.indices[keep].astype(np.int32),
        m.data[keep].astype(np.float32),
    )
