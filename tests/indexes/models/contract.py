"""The contract every vector model passes: a model's test class inherits it and names the model.

class TestAls(VectorModelContract):
    model = AlsModel(factors=16)
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

from indexes.datasets.shape import Dataset
from indexes.models.base import VectorModel, Vectors, normalise_rows


class VectorModelContract:
    model: ClassVar[VectorModel]

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, tiny_data: Dataset) -> Vectors:
        """One fit per model class, shared by its tests: they only read it."""
        return cls.model.fit(tiny_data, seed=1)

    def test_vectors_have_the_promised_shape(self, fitted: Vectors, tiny_data: Dataset) -> None:
        v = fitted
        v.check(tiny_data)  # float32, right shapes, finite, masked-in rows non-zero
        assert v.dims == self.model.dims == 16
        assert v.tracks.dtype == np.float32 and v.artists.dtype == np.float32
        assert self.model.metric in {"angular", "dot", "euclidean"}
        assert (v.tracks[~v.track_mask] == 0).all()

    def test_every_played_track_gets_a_vector(self, fitted: Vectors, tiny_data: Dataset) -> None:
        """Every track with enough support for the model gets a vector (ALS: `min_listeners`
        listeners; word2vec: `min_plays` plays in sequences; content: one play), and so does
        every artist."""
        v = fitted
        listeners = np.diff(tiny_data.interactions.tocsc().indptr)
        seq_plays = np.bincount(tiny_data.sequences.items, minlength=tiny_data.items.n_tracks)
        enough = (listeners >= getattr(self.model, "min_listeners", 1)) & (
            seq_plays >= getattr(self.model, "min_plays", 1)
        )
        assert enough.mean() > 0.3
        assert v.track_mask[enough].mean() > 0.99
        assert v.artist_mask.mean() > 0.99

    def test_vectors_learn_the_catalogue_structure(
        self, fitted: Vectors, tiny_data: Dataset
    ) -> None:
        """A track's nearest neighbours share its genre far more often than chance."""
        v = fitted
        genre = np.asarray(tiny_data.items.track_tags.argmax(axis=1)).ravel()
        unit = normalise_rows(v.tracks)
        rows = np.flatnonzero(v.track_mask)
        rng = np.random.default_rng(0)
        queries = rng.choice(rows, 300, replace=False)
        sims = unit[queries] @ unit[rows].T
        sims[np.arange(len(queries)), np.searchsorted(rows, queries)] = -np.inf  # not itself
        top = rows[np.argsort(-sims, axis=1)[:, :10]]
        agree = (genre[top] == genre[queries][:, None]).mean()
        chance = (genre[rng.choice(rows, 5000)] == genre[rng.choice(rows, 5000)]).mean()
        assert agree > 3 * chance, (agree, chance)
