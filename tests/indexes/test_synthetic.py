from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from indexes.datasets.shape import Dataset
from indexes.datasets.synthetic import DAY, DAYS, EPOCH, generate_synthetic
from indexes.datasets.synthetic_catalogue import _fridays, _rank_within
from indexes.datasets.synthetic_sessions import FLOOR, _curve, _genre_cum


@pytest.mark.parametrize("time_dynamics", [True, False])
def test_same_seed_same_catalogue(time_dynamics: bool) -> None:
    a = generate_synthetic(n_tracks=800, seed=3, time_dynamics=time_dynamics)
    b = generate_synthetic(n_tracks=800, seed=3, time_dynamics=time_dynamics)
    assert np.array_equal(a.sequences.items, b.sequences.items)
    assert np.array_equal(a.sequences.indptr, b.sequences.indptr)
    assert np.array_equal(a.sequences.timestamp, b.sequences.timestamp)
    assert a.sequences.times is not None and b.sequences.times is not None
    assert np.array_equal(a.sequences.times, b.sequences.times)
    assert np.array_equal(a.truth["track_release"], b.truth["track_release"])
    assert np.array_equal(a.items.track_artist, b.items.track_artist)
    assert (a.interactions != b.interactions).nnz == 0
    assert list(a.items.track_names) == list(b.items.track_names)


def test_without_time_dynamics_the_catalogue_and_dates_stay() -> None:
    a = generate_synthetic(n_tracks=800, seed=3)
    b = generate_synthetic(n_tracks=800, seed=3, time_dynamics=False)
    assert a.truth["time_dynamics"] and not b.truth["time_dynamics"]
    assert list(a.items.track_names) == list(b.items.track_names)
    assert list(a.items.artist_names) == list(b.items.artist_names)
    assert np.array_equal(a.items.track_artist, b.items.track_artist)
    assert (a.items.track_tags != b.items.track_tags).nnz == 0
    assert np.array_equal(a.truth["track_release"], b.truth["track_release"])
    assert np.array_equal(a.sequences.indptr, b.sequences.indptr)
    assert np.array_equal(a.sequences.user, b.sequences.user)
    assert np.array_equal(a.sequences.timestamp, b.sequences.timestamp)
    assert a.sequences.times is not None and b.sequences.times is not None
    assert np.array_equal(a.sequences.times, b.sequences.times)
    # ... only what is played differs
    assert not np.array_equal(a.sequences.items, b.sequences.items)


def test_other_seed_other_catalogue() -> None:
    a = generate_synthetic(n_tracks=800, seed=3)
    b = generate_synthetic(n_tracks=800, seed=4)
    assert not np.array_equal(a.sequences.items[:500], b.sequences.items[:500])


def test_sizes_and_shape(tiny_data: Dataset) -> None:
    items = tiny_data.items
    items.validate()
    assert items.n_tracks == 1500
    assert items.n_artists == 150
    assert tiny_data.interactions.shape == (tiny_data.n_users, 1500)
    assert tiny_data.sequences.ordered and tiny_data.sequences.has_time
    assert tiny_data.interactions_from_sequences
    # interactions are exactly the sum of the sessions
    assert tiny_data.interactions.sum() == tiny_data.sequences.n_items
    assert len(set(items.track_ids.tolist())) == 1500


def test_power_law_popularity(tiny_data: Dataset) -> None:
    plays = np.sort(tiny_data.track_plays())[::-1]
    top_decile = plays[: len(plays) // 10].sum() / plays.sum()
    assert top_decile > 0.35, top_decile


def test_cold_tracks_have_tags_but_no_plays(tiny_data: Dataset) -> None:
    plays = tiny_data.track_plays()
    cold = np.flatnonzero(plays == 0)
    assert 0 < len(cold) < 0.1 * len(plays)
    tag_counts = np.diff(tiny_data.items.track_tags.indptr)
    assert (tag_counts[cold] > 0).all()


def test_sessions_stay_mostly_in_one_genre(tiny_data: Dataset) -> None:
    # the first tag of every track is its genre; consecutive plays share it most of the time
    genre_tag = np.asarray(tiny_data.items.track_tags.argmax(axis=1)).ravel()
    seqs = tiny_data.sequences
    same, pairs = 0, 0
    for seq in seqs:
        g = genre_tag[seq]
        same += int((g[1:] == g[:-1]).sum())
        pairs += len(seq) - 1
    assert same / pairs > 0.7
    # ... far more often than two random plays do
    rng = np.random.default_rng(0)
    a, b = rng.choice(seqs.items, 5000), rng.choice(seqs.items, 5000)
    assert (genre_tag[a] == genre_tag[b]).mean() < 0.3


def test_plays_are_dated_within_their_sessions(tiny_data: Dataset) -> None:
    seqs = tiny_data.sequences
    assert seqs.has_item_times and seqs.times is not None
    assert len(seqs.times) == len(seqs.items)
    starts = seqs.indptr[:-1]
    assert np.array_equal(seqs.times[starts], seqs.timestamp)  # a session starts at its first play
    session = np.repeat(np.arange(len(seqs)), np.diff(seqs.indptr))
    within = session[1:] == session[:-1]
    gaps = np.diff(seqs.times)[within]
    assert (gaps > 0).all()  # increasing within every session
    assert 180 < gaps.mean() < 240  # a play every 3.5 minutes or so
    assert seqs.timestamp.min() >= EPOCH and seqs.timestamp.max() < EPOCH + DAYS * DAY
    lo, hi = seqs.time_span() or (0.0, 0.0)
    assert hi - lo > 0.95 * DAYS * DAY
    # each user's sessions in time order
    same_user = seqs.user[1:] == seqs.user[:-1]
    assert (np.diff(seqs.timestamp)[same_user] >= 0).all()


def test_no_track_is_played_before_its_release(tiny_data: Dataset) -> None:
    seqs = tiny_data.sequences
    assert seqs.times is not None
    release = tiny_data.truth["track_release"]
    assert (seqs.times >= release[seqs.items]).all()
    # a back catalogue, releases during the span (and played), the cold tracks released as it ends
    plays = tiny_data.track_plays()
    assert 0.6 < (release < EPOCH).mean() < 0.9
    new = (release >= EPOCH) & (release < EPOCH + DAYS * DAY)
    assert new.mean() > 0.1 and (plays[new] > 0).mean() > 0.9
    assert (release[plays == 0] >= EPOCH).mean() > 0.5


def _top(counts: np.ndarray, n: int = 100) -> set[int]:
    return set(np.argsort(-counts, kind="stable")[:n].tolist())


def _recent_vs_all_time_overlap(data: Dataset) -> float:
    """How much the 100 tracks most played in the last tenth of the span share with the 100 most
    played over all of it."""
    seqs = data.sequences
    assert seqs.times is not None
    lo, hi = seqs.time_span() or (0.0, 0.0)
    late = seqs.times >= hi - 0.1 * (hi - lo)
    n = data.items.n_tracks
    all_time = np.bincount(seqs.items, minlength=n)
    recent = np.bincount(seqs.items[late], minlength=n)
    return len(_top(all_time) & _top(recent)) / 100


def test_recent_plays_differ_from_all_time_ones_only_with_time_dynamics(
    tiny_data: Dataset,
) -> None:
    dynamic = _recent_vs_all_time_overlap(tiny_data)
    control = _recent_vs_all_time_overlap(
        generate_synthetic(n_tracks=1500, seed=7, time_dynamics=False)
    )
    # without time dynamics the two lists differ by sampling noise only; with them the recent
    # releases take over the recent list
    assert control > 0.7, control
    assert dynamic < 0.65 and dynamic < control - 0.15, (dynamic, control)


def test_releases_rise_and_fade(tiny_data: Dataset) -> None:
    seqs = tiny_data.sequences
    assert seqs.times is not None
    release = tiny_data.truth["track_release"][seqs.items]
    new = release >= EPOCH
    age = (seqs.times[new] - release[new]) / DAY
    by_week = np.bincount(np.minimum(age // 7, 9).astype(np.int64), minlength=10)
    # releases play the most in their first week, and less and less afterwards: far faster than
    # the number of releases old enough for a week falls (about 1.7x from the first to the fifth)
    assert by_week[0] > 3 * by_week[4] > 0, by_week.tolist()


def test_rejects_absurd_sizes() -> None:
    with pytest.raises(ValueError, match="between 100 and"):
        generate_synthetic(n_tracks=10)


# --- the generator's pieces -------------------------------------------------------------------


def test_releases_fall_on_fridays() -> None:
    fridays = _fridays(EPOCH, EPOCH + 15 * DAY)  # 2026-01-01 is a Thursday
    assert [datetime.fromtimestamp(f, UTC).date().isoformat() for f in fridays] == [
        "2026-01-02",
        "2026-01-09",
    ]


def test_popularity_curve_rises_after_release_and_decays_to_the_floor() -> None:
    age = np.asarray([-1.0, 0.0, 1.0, 2.0, 10.0, 200.0]) * DAY
    curve = _curve(age, np.full(len(age), 5 * DAY))
    assert curve[0] == 0.0 and curve[1] == FLOOR
    assert curve[1] < curve[2] < curve[3] and curve[3] > curve[4] > curve[5]
    assert curve[5] == pytest.approx(FLOOR, abs=1e-6)


def test_genre_cum_is_the_share_of_each_genre_up_to_each_track() -> None:
    sorted_genre = np.asarray([0, 0, 1, 1, 2], dtype=np.int32)
    start, end = np.asarray([0, 2, 4]), np.asarray([2, 4, 5])
    cum = _genre_cum(np.asarray([1.0, 3.0, 0.0, 0.0, 2.0]), sorted_genre, start, end)
    # genre 1 has no weight: its tracks are drawn uniformly
    assert cum.tolist() == [0.25, 1.0, 1.5, 2.0, 3.0]


def test_rank_within_counts_the_earlier_members_of_a_group() -> None:
    groups = np.asarray([2, 0, 2, 2, 0], dtype=np.int32)
    assert _rank_within(groups).tolist() == [0, 0, 1, 2, 1]
