from __future__ import annotations

import numpy as np
import pytest

from indexes.datasets.shape import Dataset
from indexes.datasets.synthetic import generate_synthetic


def test_same_seed_same_catalogue() -> None:
    a = generate_synthetic(n_tracks=800, seed=3)
    b = generate_synthetic(n_tracks=800, seed=3)
    assert np.array_equal(a.sequences.items, b.sequences.items)
    assert np.array_equal(a.items.track_artist, b.items.track_artist)
    assert (a.interactions != b.interactions).nnz == 0
    assert list(a.items.track_names) == list(b.items.track_names)


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


def test_rejects_absurd_sizes() -> None:
    with pytest.raises(ValueError, match="between 100 and"):
        generate_synthetic(n_tracks=10)
