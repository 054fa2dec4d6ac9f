"""The plain signals: recency-weighted popularity, co-occurrence counts, transitions."""

from __future__ import annotations

import numpy as np
import pytest

from indexes.datasets.shape import Dataset, Sequences, interactions_from_sequences, make_items
from indexes.signals import (
    COOC,
    COOC_COUNT,
    DAY,
    POPULARITY,
    TRANS,
    TRANS_RECENT,
    SignalConfig,
    compute_signals,
    recent_name,
    top_per_row,
)


def _dataset(seqs: list[list[int]], times: list[list[float]] | None, *, n: int = 5) -> Dataset:
    items = make_items(
        track_ids=[f"t{i}" for i in range(n)],
        track_names=[f"T{i}" for i in range(n)],
        track_artist=[i % 2 for i in range(n)],
        artist_ids=["a0", "a1"],
        artist_names=["A0", "A1"],
        tag_names=[],
        tag_rows=[],
        tag_cols=[],
        tag_weights=[],
    )
    indptr = np.cumsum([0, *map(len, seqs)]).astype(np.int64)
    flat_times = None if times is None else np.asarray([t for ts in times for t in ts])
    s = Sequences(
        indptr=indptr,
        items=np.asarray([i for q in seqs for i in q], dtype=np.int32),
        user=np.arange(len(seqs), dtype=np.int32),
        timestamp=np.asarray([ts[0] for ts in times]) if times else np.full(len(seqs), np.nan),
        ordered=True,
        times=flat_times,
    )
    return Dataset(
        name="tiny",
        items=items,
        user_ids=np.asarray([f"u{i}" for i in range(len(seqs))]),
        interactions=interactions_from_sequences(s, n_users=len(seqs), n_tracks=n),
        sequences=s,
        interactions_from_sequences=True,
    )


def test_transitions_count_what_followed_within_a_session() -> None:
    data = _dataset([[0, 1, 2], [0, 1, 3], [1, 0]], [[0, 1, 2], [10, 11, 12], [20, 21]])
    sig = compute_signals(data, config=SignalConfig(top_n=10)).entities["tracks"]
    idx, sc = sig.tables[TRANS].row(0)
    assert idx.tolist() == [1] and sc.tolist() == [2.0]
    idx, sc = sig.tables[TRANS].row(1)
    # 1 -> 2, 1 -> 3 and 1 -> 0 once each: ties by row; nothing crosses a session boundary
    assert sorted(idx.tolist()) == [0, 2, 3] and sc.tolist() == [1.0, 1.0, 1.0]
    assert sig.tables[TRANS].row(2)[0].tolist() == []  # 2 ended its session


def test_recency_weights_halve_every_half_life() -> None:
    day = DAY
    data = _dataset([[0, 1], [0, 2]], [[0.0, 1.0], [28 * day, 28 * day + 1]])
    cfg = SignalConfig(half_lives_days=(28.0,), transition_half_life_days=28.0)
    sig = compute_signals(data, config=cfg)
    assert sig.as_of == 28 * day + 1
    pop = sig.entities["tracks"].popularity
    recent = pop[recent_name(28.0)]
    assert recent[0] == pytest.approx(1.0 + 0.5, rel=1e-4)  # one play now, one 28 days ago
    assert recent[2] == pytest.approx(1.0, rel=1e-4)
    assert recent[1] == pytest.approx(0.5, rel=1e-4)
    assert pop[POPULARITY].tolist() == [2, 1, 1, 0, 0]
    decayed = sig.entities["tracks"].tables[TRANS_RECENT]
    idx, sc = decayed.row(0)
    assert idx.tolist() == [2, 1]  # the recent transition weighs more
    assert sc.tolist() == pytest.approx([1.0, 0.5], rel=1e-4)


def test_without_times_there_is_no_recency_and_without_order_no_transitions() -> None:
    data = _dataset([[0, 1, 2], [0, 1]], None)
    sig = compute_signals(data, config=SignalConfig())
    assert sig.as_of is None and sig.time_span is None
    t = sig.entities["tracks"]
    assert set(t.popularity) == {POPULARITY}
    assert set(t.tables) == {COOC, COOC_COUNT, TRANS}
    from dataclasses import replace

    unordered = replace(data, sequences=replace(data.sequences, ordered=False))
    assert set(compute_signals(unordered, config=SignalConfig()).entities["tracks"].tables) == {
        COOC,
        COOC_COUNT,
    }


def test_artist_transitions_leave_out_an_artist_following_itself() -> None:
    # tracks 0, 2, 4 are by artist 0; 1, 3 by artist 1
    data = _dataset([[0, 2, 1], [1, 3]], [[0, 1, 2], [5, 6]])
    sig = compute_signals(data, config=SignalConfig()).entities["artists"]
    idx, sc = sig.tables[TRANS].row(0)
    assert idx.tolist() == [1] and sc.tolist() == [1.0]
    assert sig.tables[TRANS].row(1)[0].tolist() == []


def test_top_per_row_sums_duplicates_and_keeps_the_heaviest() -> None:
    nb = top_per_row(
        np.asarray([0, 0, 0, 0, 2]),
        np.asarray([1, 2, 1, 3, 0]),
        np.asarray([1.0, 1.5, 1.0, 0.1, 4.0]),
        n=4,
        top_n=2,
    )
    assert nb.row(0)[0].tolist() == [1, 2] and nb.row(0)[1].tolist() == [2.0, 1.5]
    assert nb.row(1)[0].tolist() == [] and nb.row(2)[0].tolist() == [0]


def test_counts_are_of_sessions_and_cosine_of_listeners_when_users_have_sessions() -> None:
    from dataclasses import replace

    # one user, two sessions: 0 and 1 are played together once, 0 and 2 never in one session
    data = _dataset([[0, 1], [2, 3]], [[0, 1], [10, 11]])
    one_user = replace(data, sequences=replace(data.sequences, user=np.zeros(2, dtype=np.int32)))
    one_user = replace(
        one_user,
        user_ids=np.asarray(["u0"]),
        interactions=interactions_from_sequences(one_user.sequences, n_users=1, n_tracks=5),
    )
    t = compute_signals(one_user, config=SignalConfig()).entities["tracks"]
    assert t.tables[COOC_COUNT].row(0)[0].tolist() == [1]  # only what shared a session
    assert sorted(t.tables[COOC].row(0)[0].tolist()) == [1, 2, 3]  # every track of the listener


def test_a_long_session_is_cut_into_windows_for_the_counts() -> None:
    from indexes.signals import _windows

    assert _windows(np.asarray([0, 3, 3, 10, 11]), 3).tolist() == [0, 3, 3, 6, 9, 10, 11]
    # with windows of 2 plays, 0 and 2 never share a basket; the cosine (listeners) still sees it
    data = _dataset([[0, 1, 2, 3]], [[0, 1, 2, 3]])
    t = compute_signals(data, config=SignalConfig(window=2)).entities["tracks"]
    assert t.tables[COOC_COUNT].row(0)[0].tolist() == [1]
    assert 2 in t.tables[COOC].row(0)[0].tolist()
