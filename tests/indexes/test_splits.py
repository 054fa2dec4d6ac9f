"""Held-out splits: users or sessions held out for evaluation and validation, and time splits
(nothing after the cut leaks into training)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from indexes.datasets.shape import Dataset, make_items, sequences_from_interactions
from indexes.splits import (
    evaluation_split,
    next_track_pairs,
    played_before,
    ranked_user_baskets,
    restrict_tracks,
    sequence_baskets,
    time_splittable,
    user_baskets,
    validation_split,
)
from tests.indexes.test_signals import _dataset


def test_played_before_cuts_sessions_at_the_time() -> None:
    data = _dataset([[0, 1, 2], [3, 4]], [[0, 10, 20], [30, 40]])
    early = played_before(data, 15.0)
    assert early.sequences.items.tolist() == [0, 1]
    assert early.sequences.times is not None and early.sequences.times.tolist() == [0, 10]
    assert len(early.sequences) == 1  # the second session had not started
    assert early.interactions.sum() == 2 and early.items.n_tracks == data.items.n_tracks
    assert played_before(data, 1e9).sequences.items.tolist() == [0, 1, 2, 3, 4]


def test_next_track_pairs_are_consecutive_plays_of_one_session_in_the_window() -> None:
    data = _dataset([[0, 1, 1, 2], [3, 4]], [[0, 10, 20, 30], [40, 50]])
    pairs = next_track_pairs(data, start=5.0, end=45.0)
    # 1 -> 1 is a repeat, not a transition; 2 -> 3 crosses sessions; 3 -> 4 is after the end
    assert list(zip(pairs.prev.tolist(), pairs.next.tolist(), strict=True)) == [(0, 1), (1, 2)]
    assert pairs.time.tolist() == [10, 30]
    artists = pairs.to_artists(np.asarray([0, 1, 1, 0, 1], dtype=np.int32))
    assert list(zip(artists.prev.tolist(), artists.next.tolist(), strict=True)) == [(0, 1)]


def test_a_time_split_needs_per_play_times() -> None:
    untimed = _dataset([[0, 1]], None)
    assert not time_splittable(untimed)
    assert time_splittable(_dataset([[0, 1]], [[0, 1]]))
    with pytest.raises(ValueError, match="per-play times"):
        played_before(untimed, 1.0)


def test_known_at_keeps_only_the_tracks_played_before_the_cut() -> None:
    from indexes.splits import known_at, map_pairs

    data = _dataset([[0, 1, 2], [3, 4]], [[0, 10, 20], [30, 40]])
    early, row = known_at(data, 15.0)
    assert early.items.track_ids.tolist() == ["t0", "t1"]
    assert early.items.artist_ids.tolist() == ["a0", "a1"]
    assert row.tolist() == [0, 1, -1, -1, -1]
    assert early.interactions.shape == (data.n_users, 2)
    later = map_pairs(next_track_pairs(data, start=15.0, end=1e9), row)
    # 1 -> 2 and 3 -> 4: every next track is new, so no list can hold it
    assert later.prev.tolist() == [1, -1] and later.next.tolist() == [-1, -1]


# --- user and session splits ------------------------------------------------------------------


def _plays(counts: list[list[float]]) -> Dataset:
    """Users x tracks play counts, unordered (one sequence per user); track t by artist t % 2."""
    n = len(counts[0])
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
    m = sparse.csr_matrix(np.asarray(counts, dtype=np.float32))
    return Dataset(
        name="plays",
        items=items,
        user_ids=np.asarray([f"u{i}" for i in range(len(counts))]),
        interactions=m,
        sequences=sequences_from_interactions(m),
        interactions_from_sequences=False,
    )


def test_user_baskets_rank_a_users_items_by_plays_and_skip_users_with_one() -> None:
    data = _plays([[1, 3, 0, 3], [0, 0, 5, 0], [2, 0, 0, 1]])
    users = np.asarray([0, 1, 2])
    ranked = ranked_user_baskets(data, users, entity="tracks")
    assert [b.tolist() for b in ranked] == [[1, 3, 0], [0, 3]]  # ties by row; user 1 has one
    assert [b.tolist() for b in user_baskets(data, users, entity="tracks")] == [[0, 1, 3], [0, 3]]
    # artists: user 0 played a1 (t1, t3) 6 times and a0 once
    assert [b.tolist() for b in ranked_user_baskets(data, users, entity="artists")] == [
        [1, 0],
        [0, 1],
    ]


def test_sequence_baskets_are_the_distinct_items_of_a_session() -> None:
    data = _dataset([[0, 1, 1, 2], [3, 3], [4, 2]], None)
    mask = np.asarray([True, True, True])
    tracks = sequence_baskets(data, mask, entity="tracks")
    assert [b.tolist() for b in tracks] == [[0, 1, 2], [2, 4]]  # [3, 3] is one item
    artists = sequence_baskets(data, mask, entity="artists")
    assert [b.tolist() for b in artists] == [[0, 1]]  # t4 and t2 are both by a0
    assert sequence_baskets(data, np.asarray([False, True, False]), entity="tracks") == []


def test_a_user_split_holds_out_users_with_two_items_or_more() -> None:
    data = _plays([[1, 1, 0, 0]] * 6 + [[1, 0, 0, 0]] * 4)
    split = evaluation_split(data, test_fraction=0.5, seed=1)
    assert split.ranked is not None
    held = set(data.user_ids.tolist()) - set(split.train.user_ids.tolist())
    # half of the 6 eligible users; the users with one item are never held out
    assert len(held) == 3 and all(int(u[1:]) < 6 for u in held)
    assert split.train.n_users == 7 and len(split.baskets["tracks"]) == 3
    assert split.description == "users split at random: 3 of 10 users held out"
    assert [b.tolist() for b in split.baskets["tracks"]] == [[0, 1]] * 3
    assert split.train.interactions.shape == (7, 4)


def test_a_session_split_holds_out_the_latest_sessions() -> None:
    seqs = [[i % 5, (i + 1) % 5] for i in range(10)]
    data = _dataset(seqs, [[100.0 * i, 100.0 * i + 1] for i in range(10)])
    split = evaluation_split(data, test_fraction=0.2, seed=1)
    assert split.ranked is None
    assert split.description.startswith("sessions split by time: 2 sessions after the 80%")
    assert [b.tolist() for b in split.baskets["tracks"]] == [[3, 4], [0, 4]]
    assert split.train.sequences.timestamp.max() < 800
    # by_users splits users even where there are session times
    by_users = evaluation_split(data, test_fraction=0.2, seed=1, by_users=True)
    assert by_users.ranked is not None and by_users.description.startswith("users split")


def test_validation_users_are_sampled_within_their_bounds() -> None:
    data = _plays([[1, 1, 0, 0]] * 20)

    def held(fraction: float, min_users: int, max_users: int) -> int:
        split = validation_split(
            data, fraction=fraction, min_users=min_users, max_users=max_users, seed=0
        )
        return data.n_users - split.train.n_users

    assert held(0.1, 5, 9) == 5  # at least min_users
    assert held(0.3, 0, 9) == 6
    assert held(0.9, 0, 30) == 10  # never more than half of the eligible users
    split = validation_split(data, fraction=0.5, min_users=0, max_users=3, seed=0)
    assert split.ranked is not None and len(split.baskets["artists"]) == 3
    assert split.train.n_users == 17 and split.description == "3 validation users held out"


def test_validation_baskets_of_ordered_data_are_the_held_out_users_sessions() -> None:
    data = _dataset([[0, 1], [2, 3], [1, 2], [3, 4]], [[0, 1], [2, 3], [4, 5], [6, 7]])
    split = validation_split(data, fraction=0.5, min_users=0, max_users=10, seed=0)
    assert split.ranked is None and split.train.n_users == 2
    train_seqs = {tuple(s.tolist()) for s in split.train.sequences}
    held = [b.tolist() for b in split.baskets["tracks"]]
    assert len(held) == 2 and not {tuple(b) for b in held} & train_seqs


def test_restrict_tracks_renumbers_tracks_and_artists_and_refuses_a_played_drop() -> None:
    data = _dataset([[1, 3]], [[0, 1]])
    keep = np.asarray([False, True, False, True, False])
    small, row = restrict_tracks(data, keep)
    assert row.tolist() == [-1, 0, -1, 1, -1]
    assert small.items.track_ids.tolist() == ["t1", "t3"]
    assert small.items.artist_ids.tolist() == ["a1"] and small.items.track_artist.tolist() == [0, 0]
    assert small.sequences.items.tolist() == [0, 1]
    assert small.interactions.toarray().tolist() == [[1, 1]]
    with pytest.raises(ValueError, match="a dropped track is still played"):
        restrict_tracks(data, np.asarray([True, True, True, False, True]))
