"""Held-out splits, the time ones in particular: nothing after the cut leaks into training."""

from __future__ import annotations

import numpy as np
import pytest

from indexes.splits import next_track_pairs, played_before, time_splittable
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
