"""The one table type of a bundle: for each row, a list of (row, score), stored CSR-style.

Neighbour tables (co-occurrence, transitions) keep each row's list sorted best first; a user's
plays are the same shape (the tracks played and how often). The offline code builds them, the
bundle writes and reads them as three arrays, the ensemble scores with them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Neighbours:
    """The list of row i is indices[indptr[i]:indptr[i + 1]], with the same slice of scores."""

    indptr: NDArray[np.int64]
    indices: NDArray[np.int32]
    scores: NDArray[np.float32]

    def row(self, i: int) -> tuple[NDArray[np.int32], NDArray[np.float32]]:
        a, b = int(self.indptr[i]), int(self.indptr[i + 1])
        return self.indices[a:b], self.scores[a:b]

    @classmethod
    def from_row_counts(
        cls, counts: NDArray[np.integer], indices: NDArray[np.int32], scores: NDArray[np.float32]
    ) -> Neighbours:
        """The table whose rows hold counts[0], counts[1], ... of the entries, in order."""
        indptr = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        return cls(indptr=indptr, indices=indices, scores=scores)

    def rows_of(
        self, rows: NDArray[np.integer], *, limit: int | None = None
    ) -> tuple[NDArray[np.int32], NDArray[np.float32], NDArray[np.int64], NDArray[np.int64]]:
        """The lists of several rows at once, each cut at `limit` (None: whole): their indices and
        scores one after the other, and for each entry the position in `rows` it belongs to and
        its place in that row's list."""
        rows = np.asarray(rows, dtype=np.int64)
        starts = self.indptr[rows]
        lengths = self.indptr[rows + 1] - starts
        if limit is not None:
            lengths = np.minimum(lengths, limit)
        segment, place = segments(lengths)
        at = np.repeat(starts, lengths) + place
        return self.indices[at], self.scores[at], segment, place


def segments(lengths: NDArray[np.integer]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """For lists of `lengths` laid one after the other: each entry's list (0, 1, ...) and its
    place in that list."""
    lengths = np.asarray(lengths, dtype=np.int64)
    segment = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    ends = np.cumsum(lengths)
    place = np.arange(int(ends[-1]) if len(ends) else 0, dtype=np.int64) - np.repeat(
        ends - lengths, lengths
    )
    return segment, place
