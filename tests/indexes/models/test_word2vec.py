"""word2vec over sessions: the vector model contract, and the play threshold of a track vector."""

from __future__ import annotations

import numpy as np

from indexes.datasets.shape import Dataset
from indexes.models.word2vec import Word2VecModel
from tests.indexes.models.contract import VectorModelContract


class TestWord2Vec(VectorModelContract):
    model = Word2VecModel(vector_size=16, workers=2)

    def test_leaves_rarely_played_tracks_without_a_vector(self, tiny_data: Dataset) -> None:
        plays = np.bincount(tiny_data.sequences.items, minlength=tiny_data.items.n_tracks)
        rare = (plays > 0) & (plays < 5)
        assert rare.any()
        v = Word2VecModel(vector_size=8, epochs=1, min_plays=5).fit(tiny_data, seed=1)
        assert not v.track_mask[rare].any() and v.track_mask[plays >= 5].mean() > 0.99
        assert (v.tracks[rare] == 0).all()
        assert v.artist_mask.mean() > 0.99
