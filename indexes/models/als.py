"""Implicit matrix factorisation (Hu, Koren, Volinsky 2008) with the `implicit` library's ALS.

Confidence is 1 + alpha * c, where c is the play count (`counts="linear"`, the paper's first
form) or log(1 + plays) (`counts="log"`, the paper's second form, which copes with the very
long-tailed counts of real listening data).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
from scipy import sparse

from indexes.datasets.shape import Dataset
from indexes.models.base import Vectors, artists_from_tracks

MIN_LISTENERS = 5


@dataclass(frozen=True)
class AlsModel:
    """Track and user factors of the confidence-weighted play matrix; artists from their tracks."""

    name: ClassVar[str] = "als"
    metric: ClassVar[str] = "angular"
    factors: int = 32
    regularization: float = 0.05
    alpha: float = 10.0
    counts: Literal["linear", "log"] = "log"
    iterations: int = 15
    # tracks with fewer listeners get no ALS vector (they stay cold in this model; word2vec,
    # content and co-occurrence still cover them). Their factors are little more than a copy of
    # their one or two listeners' vectors: noise that crowds every neighbourhood of the index
    # and costs its recall at any search_k (loadtest/README.md, the ALS support filter)
    min_listeners: int = MIN_LISTENERS

    @property
    def dims(self) -> int:
        return self.factors

    def fit(self, data: Dataset, *, seed: int) -> Vectors:
        from implicit.cpu.als import AlternatingLeastSquares  # heavy import, only when fitting
        from threadpoolctl import threadpool_limits

        plays = sparse.csr_matrix(data.interactions, dtype=np.float32)
        confidence = self._confidence(plays)
        # implicit parallelises itself; a threaded BLAS underneath only fights it
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=1.0,
                iterations=self.iterations,
                random_state=seed,
                dtype=np.float32,
            )
            model.fit(confidence, show_progress=False)
        return als_vectors(
            data,
            np.ascontiguousarray(model.item_factors, dtype=np.float32),
            min_listeners=self.min_listeners,
            user_encoder=self._user_encoder(model),
        )

    def user_encoder(self, item_factors: np.ndarray) -> Callable[[sparse.csr_matrix], np.ndarray]:
        """The user encoder of item factors fitted elsewhere (the Spark engine's ALS): the same
        half step, with this model's regularization."""
        from implicit.cpu.als import AlternatingLeastSquares

        model = AlternatingLeastSquares(
            factors=self.factors, regularization=self.regularization, alpha=1.0,
            dtype=np.float32,
        )  # fmt: skip
        model.item_factors = np.ascontiguousarray(item_factors, dtype=np.float32)
        return self._user_encoder(model)

    def _user_encoder(self, model: Any) -> Callable[[sparse.csr_matrix], np.ndarray]:
        from threadpoolctl import threadpool_limits

        def encode_users(plays: sparse.csr_matrix) -> np.ndarray:
            """One least-squares half step per user against the fitted item factors."""
            c = self._confidence(plays)
            with threadpool_limits(1, "blas"):
                users = model.recalculate_user(np.arange(c.shape[0]), c)
            return np.ascontiguousarray(users, dtype=np.float32).reshape(c.shape[0], self.factors)

        return encode_users

    def _confidence(self, plays: sparse.csr_matrix) -> sparse.csr_matrix:
        """alpha * c, where c is the count or log(1 + count); implicit adds the 1."""
        confidence = sparse.csr_matrix(plays, dtype=np.float32, copy=True)
        if self.counts == "log":
            confidence.data = np.log1p(confidence.data)
        confidence.data *= self.alpha
        return confidence


def als_vectors(
    data: Dataset,
    tracks: np.ndarray,
    *,
    min_listeners: int,
    user_encoder: Callable[[sparse.csr_matrix], np.ndarray] | None,
) -> Vectors:
    """The Vectors of ALS track factors (`tracks`, one row per catalogue track; changed in
    place): artists from every played track, then the tracks with fewer than `min_listeners`
    listeners lose their vector."""
    plays = sparse.csr_matrix(data.interactions, dtype=np.float32)
    listeners = np.diff(sparse.csc_matrix(plays).indptr)
    played = listeners > 0
    # artists from every played track (an artist of many small tracks still gets a vector)
    artists, artist_mask = artists_from_tracks(
        data, tracks, played, weights=np.log1p(listeners).astype(np.float32)
    )
    track_mask = listeners >= max(1, min_listeners)
    tracks[~track_mask] = 0.0
    return Vectors(
        tracks=tracks,
        track_mask=track_mask,
        artists=artists,
        artist_mask=artist_mask,
        user_encoder=user_encoder,
    )
