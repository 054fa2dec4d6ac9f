"""The one small interface every vector model implements, and helpers they share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np
from numpy.typing import NDArray
from scipy import sparse

from indexes.datasets.shape import Dataset

FloatMatrix = NDArray[np.float32]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True)
class Vectors:
    """What a model yields: one row per catalogue track / artist; a mask says which rows are real.

    Rows where the mask is False (e.g. tracks nobody played, for a collaborative model) are zero
    and must not be indexed.
    """

    tracks: FloatMatrix
    track_mask: BoolArray
    artists: FloatMatrix
    artist_mask: BoolArray
    # for models with user vectors (ALS): users x tracks play counts -> users x dims vectors,
    # so users held out of training (or new ones) get vectors too
    user_encoder: Callable[[sparse.csr_matrix], FloatMatrix] | None = None

    @property
    def dims(self) -> int:
        return int(self.tracks.shape[1])

    def check(self, data: Dataset) -> None:
        """Raises ValueError unless the shapes, dtypes and values fit `data`."""
        for name, m, mask, n in (
            ("tracks", self.tracks, self.track_mask, data.items.n_tracks),
            ("artists", self.artists, self.artist_mask, data.items.n_artists),
        ):
            if m.dtype != np.float32 or m.ndim != 2:
                raise ValueError(f"{name}: expected a float32 matrix, got {m.dtype} {m.shape}")
            if m.shape != (n, self.dims) or mask.shape != (n,) or mask.dtype != np.bool_:
                raise ValueError(f"{name}: expected {n} rows of {self.dims} dims")
            if not np.isfinite(m).all():
                raise ValueError(f"{name}: vectors contain NaN or infinity")
            if (np.abs(m[mask]).sum(axis=1) == 0).any():
                raise ValueError(f"{name}: a masked-in vector is all zeros")


class VectorModel(Protocol):
    """Fit on the internal shape, return vectors. `name` names the index files of the model."""

    name: ClassVar[str]
    metric: ClassVar[str]  # Annoy metric of the model's indexes

    @property
    def dims(self) -> int: ...

    def fit(self, data: Dataset, *, seed: int) -> Vectors: ...


def normalise_rows(m: FloatMatrix) -> FloatMatrix:
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    out: FloatMatrix = np.divide(m, norms, out=np.zeros_like(m), where=norms > 0).astype(np.float32)
    return out


def artists_from_tracks(
    data: Dataset,
    tracks: FloatMatrix,
    mask: BoolArray,
    *,
    weights: NDArray[np.float32] | None = None,
) -> tuple[FloatMatrix, BoolArray]:
    """Artist vectors as the (weighted) mean of their tracks' unit vectors."""
    if data.tracks_are_artists:
        return tracks.copy(), mask.copy()
    unit = normalise_rows(tracks)
    w = np.ones(len(mask), dtype=np.float32) if weights is None else weights.astype(np.float32)
    w = np.where(mask, w, 0.0).astype(np.float32)
    n_artists = data.items.n_artists
    out = np.asarray(data.items.track_to_artist().T @ (unit * w[:, None]), dtype=np.float32)
    totals = np.bincount(data.items.track_artist, weights=w, minlength=n_artists)
    artist_mask = (totals > 0) & (np.abs(out).sum(axis=1) > 0)
    return normalise_rows(out), artist_mask
