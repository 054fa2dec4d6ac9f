"""Content model: TF-IDF over tags (and the artist, for tracks) reduced by truncated SVD.

It needs no plays, so it gives vectors to new tracks nobody has listened to (cold start).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy import sparse

from indexes.datasets.shape import Dataset
from indexes.models.base import Vectors, normalise_rows


@dataclass(frozen=True)
class ContentModel:
    name: ClassVar[str] = "content"
    metric: ClassVar[str] = "angular"
    components: int = 32
    artist_weight: float = 1.0  # weight of the artist token next to the tags of a track

    @property
    def dims(self) -> int:
        return self.components

    def fit(self, data: Dataset, *, seed: int) -> Vectors:
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfTransformer

        items = data.items
        track_terms = sparse.csr_matrix(items.track_tags, dtype=np.float32)
        artist_terms = items.artist_tags()
        if not data.tracks_are_artists and self.artist_weight > 0:
            # the artist as one more term: tracks of one artist share it
            track_terms = sparse.hstack(
                [track_terms, items.track_to_artist() * self.artist_weight], format="csr"
            )
            artist_terms = sparse.hstack(
                [artist_terms, sparse.identity(items.n_artists, format="csr") * self.artist_weight],
                format="csr",
            )
        track_terms.data = np.log1p(track_terms.data)
        artist_terms.data = np.log1p(artist_terms.data)
        n_terms = track_terms.shape[1]
        tfidf = TfidfTransformer(sublinear_tf=False).fit(track_terms)
        t = tfidf.transform(track_terms)
        a = tfidf.transform(artist_terms)
        k = max(1, min(self.components, n_terms - 1, t.shape[0] - 1))
        svd = TruncatedSVD(n_components=k, random_state=seed, algorithm="randomized", n_iter=5)
        svd.fit(t)
        tracks = _pad(normalise_rows(svd.transform(t).astype(np.float32)), self.components)
        artists = _pad(normalise_rows(svd.transform(a).astype(np.float32)), self.components)
        track_mask = np.abs(tracks).sum(axis=1) > 0
        artist_mask = np.abs(artists).sum(axis=1) > 0
        return Vectors(
            tracks=tracks, track_mask=track_mask, artists=artists, artist_mask=artist_mask
        )


def _pad(m: np.ndarray, dims: int) -> np.ndarray:
    if m.shape[1] == dims:
        return np.ascontiguousarray(m, dtype=np.float32)
    out = np.zeros((m.shape[0], dims), dtype=np.float32)
    out[:, : m.shape[1]] = m
    return out
