"""Implicit ALS: the vector model contract, and the listener threshold of a track vector."""

from __future__ import annotations

import numpy as np

from indexes.datasets.shape import Dataset
from indexes.models.als import AlsModel
from indexes.models.base import Vectors
from tests.indexes.models.contract import VectorModelContract


class TestAls(VectorModelContract):
    model = AlsModel(factors=16)

    def test_leaves_cold_tracks_without_a_vector(self, fitted: Vectors, tiny_data: Dataset) -> None:
        cold = tiny_data.track_plays() == 0
        assert cold.any()
        assert not fitted.track_mask[cold].any()

    def test_leaves_tracks_with_few_listeners_without_a_vector(self, tiny_data: Dataset) -> None:
        listeners = np.diff(tiny_data.interactions.tocsc().indptr)
        few = (listeners > 0) & (listeners < 5)
        assert few.any()
        v = AlsModel(factors=8, iterations=3, min_listeners=5).fit(tiny_data, seed=1)
        assert not v.track_mask[few].any() and v.track_mask[listeners >= 5].all()
        assert v.artist_mask.mean() > 0.99  # artists still get vectors from all their played tracks
        every = AlsModel(factors=8, iterations=3, min_listeners=1).fit(tiny_data, seed=1)
        assert every.track_mask[listeners > 0].all()
