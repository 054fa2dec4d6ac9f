"""word2vec (skip-gram, negative sampling) over sessions and playlists with `gensim`.

Ordered sequences use a short window (neighbours in the listening order); unordered ones (a
user's tracks, for sources without sessions) use a window that spans the whole list
(item2vec). The corpus goes through a temporary file so that gensim's fast `corpus_file` mode
trains on all cores without a Python list of a million strings.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from indexes.datasets.shape import Dataset
from indexes.models.base import Vectors, artists_from_tracks
from indexes.progress import log

# Tracks played fewer times get no vector: like ALS's rare tracks they make the index much harder
# to search (a larger search_k, slower queries, for the same recall), and leaving them out costs
# the recommendations little (loadtest/README.md, word2vec `min_plays`)
MIN_PLAYS = 8


@dataclass(frozen=True)
class Word2VecModel:
    """Skip-gram track vectors of the sequences (gensim); artists from their tracks. A track
    is a token whatever its plays, but only the often played ones keep their vector."""

    name: ClassVar[str] = "word2vec"
    metric: ClassVar[str] = "angular"
    vector_size: int = 32
    window: int = 5
    epochs: int = 5
    negative: int = 5
    min_count: int = 1  # every track is a token, so rare ones still give their neighbours context
    # but only tracks played at least this often get a vector: a track seen in one or two
    # sessions has a vector set by those few windows (noise that crowds every neighbourhood of
    # the index, as with ALS's min_listeners)
    min_plays: int = MIN_PLAYS
    sample: float = 1e-4
    # gensim's threads race on shared vectors: with more than one, two fits on the same data
    # and seed differ (1 makes a build reproducible; BuildConfig.threads)
    workers: int = 2

    @property
    def dims(self) -> int:
        return self.vector_size

    def fit(self, data: Dataset, *, seed: int) -> Vectors:
        seqs = data.sequences
        n_tracks = data.items.n_tracks
        with tempfile.TemporaryDirectory(prefix="segue-w2v-") as tmp:
            corpus = os.path.join(tmp, "corpus.txt")
            n_lines = _write_corpus(
                corpus, seqs.indptr, seqs.items, shuffle=not seqs.ordered, seed=seed
            )
            if n_lines == 0:
                return self._empty(data)
            wv = self._train(corpus, data, seed=seed)
        tracks = np.zeros((n_tracks, self.vector_size), dtype=np.float32)
        mask = np.zeros(n_tracks, dtype=bool)
        keys = np.asarray([int(k) for k in wv.index_to_key], dtype=np.int64)
        tracks[keys] = wv.vectors.astype(np.float32)
        mask[keys] = True
        return word2vec_vectors(data, tracks, mask, min_plays=self.min_plays)

    def _train(self, corpus: str, data: Dataset, *, seed: int) -> Any:
        """gensim's keyed vectors of the corpus file (one token per track row)."""
        from gensim.models import Word2Vec  # heavy import, only when fitting

        seqs = data.sequences
        if seqs.ordered:
            window, shrink = self.window, True
        else:
            window, shrink = max(self.window, int(np.diff(seqs.indptr).max(initial=1))), False
        model = Word2Vec(
            corpus_file=corpus,
            vector_size=self.vector_size,
            window=window,
            shrink_windows=shrink,
            min_count=self.min_count,
            sg=1,
            negative=self.negative,
            sample=self.sample,
            epochs=self.epochs,
            workers=self.workers,
            seed=seed,
            callbacks=[_epoch_log(self.epochs)],
        )
        return model.wv

    def _empty(self, data: Dataset) -> Vectors:
        n_t, n_a, d = data.items.n_tracks, data.items.n_artists, self.vector_size
        return Vectors(
            tracks=np.zeros((n_t, d), dtype=np.float32),
            track_mask=np.zeros(n_t, dtype=bool),
            artists=np.zeros((n_a, d), dtype=np.float32),
            artist_mask=np.zeros(n_a, dtype=bool),
        )


def word2vec_vectors(
    data: Dataset, tracks: np.ndarray, mask: np.ndarray, *, min_plays: int
) -> Vectors:
    """The Vectors of word2vec track vectors (`tracks`, one row per catalogue track, `mask`:
    the rows trained; both changed in place): artists from every track with a vector, then the
    tracks played fewer than `min_plays` times lose theirs."""
    mask &= np.abs(tracks).sum(axis=1) > 0
    plays = np.bincount(data.sequences.items, minlength=data.items.n_tracks).astype(np.float32)
    # artists from every track with a vector; then the tracks played too rarely lose theirs
    artists, artist_mask = artists_from_tracks(data, tracks, mask, weights=np.log1p(plays))
    mask &= plays >= max(1, min_plays)
    tracks[~mask] = 0.0
    return Vectors(tracks=tracks, track_mask=mask, artists=artists, artist_mask=artist_mask)


def _epoch_log(epochs: int) -> Any:
    """A gensim callback that logs each epoch's end."""
    from gensim.models.callbacks import CallbackAny2Vec

    class EpochLog(CallbackAny2Vec):
        def __init__(self) -> None:
            self.epoch, self.start = 0, time.perf_counter()

        def on_epoch_end(self, model: object) -> None:
            self.epoch += 1
            elapsed = time.perf_counter() - self.start
            log(f"  word2vec: epoch {self.epoch}/{epochs} ({elapsed:.1f}s)")

    return EpochLog()


def _write_corpus(
    path: str, indptr: np.ndarray, items: np.ndarray, *, shuffle: bool, seed: int
) -> int:
    """One line per sequence of two or more items, tokens are track rows. Returns the line count."""
    rng = np.random.default_rng(seed)
    lines = 0
    with open(path, "w", encoding="ascii") as f:
        chunk: list[str] = []
        for s in range(len(indptr) - 1):
            seq = items[indptr[s] : indptr[s + 1]]
            if len(seq) < 2:
                continue
            if shuffle:
                seq = rng.permutation(seq)
            chunk.append(" ".join(map(str, seq.tolist())))
            lines += 1
            if len(chunk) >= 10000:
                f.write("\n".join(chunk) + "\n")
                chunk.clear()
        if chunk:
            f.write("\n".join(chunk) + "\n")
    return lines
