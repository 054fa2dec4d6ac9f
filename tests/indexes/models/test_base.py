"""`Vectors.check`: what a model must hand the bundle writer."""

from __future__ import annotations

import numpy as np
import pytest

from indexes.datasets.shape import Dataset
from indexes.models.base import Vectors


def test_check_rejects_bad_vectors(tiny_data: Dataset) -> None:
    n, a = tiny_data.items.n_tracks, tiny_data.items.n_artists
    good = dict(
        tracks=np.ones((n, 4), np.float32),
        track_mask=np.ones(n, bool),
        artists=np.ones((a, 4), np.float32),
        artist_mask=np.ones(a, bool),
    )
    Vectors(**good).check(tiny_data)
    bad = dict(good, tracks=np.full((n, 4), np.nan, np.float32))
    with pytest.raises(ValueError, match="NaN"):
        Vectors(**bad).check(tiny_data)
    with pytest.raises(ValueError, match="float32"):
        Vectors(**dict(good, tracks=np.ones((n, 4)))).check(tiny_data)
    with pytest.raises(ValueError, match="rows"):
        Vectors(**dict(good, tracks=np.ones((n - 1, 4), np.float32))).check(tiny_data)
    with pytest.raises(ValueError, match="all zeros"):
        Vectors(**dict(good, artists=np.zeros((a, 4), np.float32))).check(tiny_data)
