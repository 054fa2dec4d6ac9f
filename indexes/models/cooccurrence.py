"""Item-item co-occurrence: cosine over listener sets, kept as the top-N neighbours of each item.

cos(i, j) = |L(i) ∩ L(j)| / sqrt(|L(i)| |L(j)|), where L(i) is the set of users (or sessions) that
played i. It is both a baseline of `segue evaluate` and a candidate source and feature of the
ensemble. The product is computed in row blocks so memory stays bounded on big catalogues.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import sparse

from indexes.progress import Ticker


@dataclass(frozen=True)
class Neighbours:
    """Top-N neighbours per item, CSR-style, each row sorted by score descending."""

    indptr: NDArray[np.int64]
    indices: NDArray[np.int32]
    scores: NDArray[np.float32]

    def row(self, i: int) -> tuple[NDArray[np.int32], NDArray[np.float32]]:
        a, b = int(self.indptr[i]), int(self.indptr[i + 1])
        return self.indices[a:b], self.scores[a:b]

    @property
    def n_items(self) -> int:
        return len(self.indptr) - 1


def cooccurrence_neighbours(
    baskets: sparse.csr_matrix,
    *,
    top_n: int = 100,
    max_per_basket: int = 200,
    block_products: int = 20_000_000,
    name: str = "co-occurrence",
) -> Neighbours:
    """Cosine neighbours of the columns of a baskets x items matrix (non-zero = present)."""
    return _cooccurrence(
        baskets, top_n=top_n, max_per_basket=max_per_basket, block_products=block_products,
        name=name, counts=False,
    )[0]  # fmt: skip


def cooccurrence_tables(
    baskets: sparse.csr_matrix,
    *,
    top_n: int = 100,
    max_per_basket: int = 200,
    block_products: int = 20_000_000,
    name: str = "co-occurrence",
) -> tuple[Neighbours, Neighbours]:
    """(cosine neighbours, count neighbours) from one product: the top N by cosine and,
    separately, the top N by the plain count of baskets that hold both items (counts keep the
    popularity that cosine factors out: "what plays next" needs it, "similar" less so)."""
    cos, count = _cooccurrence(
        baskets, top_n=top_n, max_per_basket=max_per_basket, block_products=block_products,
        name=name, counts=True,
    )  # fmt: skip
    assert count is not None
    return cos, count


def _cooccurrence(
    baskets: sparse.csr_matrix,
    *,
    top_n: int,
    max_per_basket: int,
    block_products: int,
    name: str,
    counts: bool,
) -> tuple[Neighbours, Neighbours | None]:
    """Baskets longer than `max_per_basket` keep their heaviest items (the cost grows with the
    square of basket length).
    """
    # a copy: the data is set to 1 below, and csr_matrix shares a float32 input's arrays
    x = sparse.csr_matrix(baskets, dtype=np.float32, copy=True)
    x.eliminate_zeros()
    x = _cap_rows(x, max_per_basket)
    x.data[:] = 1.0
    n_items = x.shape[1]
    listeners = np.asarray(x.sum(axis=0)).ravel().astype(np.float32)
    norm = np.sqrt(listeners)
    xt = sparse.csr_matrix(x.T)
    basket_len = np.diff(x.indptr).astype(np.int64)
    # work of row i of xt @ x = sum of the lengths of the baskets containing i
    work = np.asarray(xt @ basket_len).ravel()
    cos_parts: list[tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.float32]]] = []
    count_parts: list[tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.float32]]] = []
    ticker = Ticker(name, total=n_items, unit="items")
    start = 0
    while start < n_items:
        stop = start + 1
        budget = work[start]
        while stop < n_items and budget + work[stop] <= block_products:
            budget += work[stop]
            stop += 1
        block = sparse.csr_matrix(xt[start:stop] @ x)
        rows = np.repeat(np.arange(stop - start), np.diff(block.indptr))
        cols = block.indices
        self_pair = start + rows == cols  # an item is not its own neighbour
        cosine = block.data / (norm[start + rows] * norm[cols])
        cosine[self_pair] = -1.0
        cos_parts.append(_top_of_block(rows, cols, cosine, top_n=top_n, n_rows=stop - start))
        if counts:
            together = block.data.astype(np.float32)
            together[self_pair] = -1.0
            count_parts.append(
                _top_of_block(rows, cols, together, top_n=top_n, n_rows=stop - start)
            )
        ticker.add(stop - start)
        start = stop
    return _join(cos_parts, n_items), (_join(count_parts, n_items) if counts else None)


def _top_of_block(
    rows: NDArray[np.int64],
    cols: NDArray[np.int32],
    data: NDArray[np.float32],
    *,
    top_n: int,
    n_rows: int,
) -> tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.float32]]:
    """Per row of a block (rows ascending), its top_n positive scores, best first."""
    # one sort of a composite key: row ascending, then score descending (scores scaled into
    # [0, 1]; twice as fast as a lexsort of the two keys)
    scale = max(1.0, float(data.max(initial=0.0)))
    order = np.argsort(rows * 4.0 + (1.0 - data / scale), kind="stable")
    rows_sorted = rows[order]
    first = np.searchsorted(rows_sorted, np.arange(n_rows))
    rank = np.arange(len(order)) - first[rows_sorted]
    keep_mask = (rank < top_n) & (data[order] > 0)
    keep = order[keep_mask]
    counts = np.bincount(rows_sorted[keep_mask], minlength=n_rows).astype(np.int64)
    return counts, cols[keep].astype(np.int32), data[keep].astype(np.float32)


def _join(
    parts: list[tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.float32]]], n_items: int
) -> Neighbours:
    indptr = np.zeros(n_items + 1, dtype=np.int64)
    if parts:
        np.cumsum(np.concatenate([p[0] for p in parts]), out=indptr[1:])
    return Neighbours(
        indptr=indptr,
        indices=np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, dtype=np.int32),
        scores=np.concatenate([p[2] for p in parts]) if parts else np.zeros(0, dtype=np.float32),
    )


def _cap_rows(x: sparse.csr_matrix, cap: int) -> sparse.csr_matrix:
    lengths = np.diff(x.indptr)
    if len(lengths) == 0 or lengths.max() <= cap:
        return x
    rows = np.repeat(np.arange(x.shape[0]), lengths)
    order = np.lexsort((-x.data, rows))
    rank = np.arange(len(order)) - x.indptr[rows[order]]
    keep = np.sort(order[rank < cap])
    return sparse.csr_matrix((x.data[keep], (rows[keep], x.indices[keep])), shape=x.shape)


def popularity(baskets: sparse.csr_matrix) -> NDArray[np.float32]:
    """Listeners per item: the number of baskets (users or sessions) that contain it."""
    x = sparse.csc_matrix(baskets)
    x.eliminate_zeros()
    return np.diff(x.indptr).astype(np.float32)
