"""Item-item co-occurrence: cosine over listener sets, kept as the top-N neighbours of each item.

cos(i, j) = |L(i) ∩ L(j)| / sqrt(|L(i)| |L(j)|), where L(i) is the set of users (or sessions) that
played i. It is both a baseline of `segue evaluate` and a candidate source and feature of the
ensemble. The product is computed in row blocks so memory stays bounded on big catalogues.

Ties at the top-N cut: among equal scores, the pair that first met in the latest basket is kept
(then the higher column). That is the order in which scipy's sparse product lists a row's columns
(the last discovered first; baskets are a session's windows in time order, or listeners by row),
kept by a stable sort; on radio sessions it keeps the newer pairs of the many that met once. The
Spark engine orders ties the same way (`indexes.spark.signals._top`);
`tests/indexes/models/test_cooccurrence.py` holds scipy to it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypedDict, Unpack

import numpy as np
from numpy.typing import NDArray
from scipy import sparse

from indexes.bundle.neighbours import Neighbours
from indexes.progress import Ticker


class CoocOptions(TypedDict, total=False):
    top_n: int  # neighbours kept per item (100)
    max_per_basket: int  # a longer basket keeps its heaviest items (200): the cost is quadratic
    block_products: int  # products per row block (20M): the bound on memory
    name: str  # what the progress lines call it


def cooccurrence_neighbours(
    baskets: sparse.csr_matrix, **options: Unpack[CoocOptions]
) -> Neighbours:
    """Cosine neighbours of the columns of a baskets x items matrix (non-zero = present)."""
    return _cooccurrence(baskets, counts=False, **options)[0]


def cooccurrence_tables(
    baskets: sparse.csr_matrix, **options: Unpack[CoocOptions]
) -> tuple[Neighbours, Neighbours]:
    """(cosine neighbours, count neighbours) from one product: the top N by cosine and,
    separately, the top N by the plain count of baskets that hold both items (counts keep the
    popularity that cosine factors out: "what plays next" needs it, "similar" less so)."""
    cos, count = _cooccurrence(baskets, counts=True, **options)
    assert count is not None
    return cos, count


def _cooccurrence(
    baskets: sparse.csr_matrix,
    *,
    counts: bool,
    top_n: int = 100,
    max_per_basket: int = 200,
    block_products: int = 20_000_000,
    name: str = "co-occurrence",
) -> tuple[Neighbours, Neighbours | None]:
    x = _presence(baskets, max_per_basket)
    n_items = x.shape[1]
    norm = np.sqrt(np.asarray(x.sum(axis=0)).ravel().astype(np.float32))  # sqrt of listeners
    xt = sparse.csr_matrix(x.T)
    cos_parts: list[_Top] = []
    count_parts: list[_Top] = []
    ticker = Ticker(name, total=n_items, unit="items")
    for start, stop in _row_blocks(xt, x, block_products=block_products):
        block = _Block.of(sparse.csr_matrix(xt[start:stop] @ x), start=start)
        cos_parts.append(
            block.top(block.together / (norm[start + block.rows] * norm[block.cols]), top_n=top_n)
        )
        if counts:
            count_parts.append(block.top(block.together.astype(np.float32), top_n=top_n))
        ticker.add(stop - start)
    return _join(cos_parts, n_items), (_join(count_parts, n_items) if counts else None)


def _presence(baskets: sparse.csr_matrix, max_per_basket: int) -> sparse.csr_matrix:
    """1 where a basket holds an item; a basket longer than `max_per_basket` keeps its heaviest
    items."""
    # a copy: the data is set to 1 below, and csr_matrix shares a float32 input's arrays
    x = sparse.csr_matrix(baskets, dtype=np.float32, copy=True)
    x.eliminate_zeros()
    x = _cap_rows(x, max_per_basket)
    x.data[:] = 1.0
    x.sort_indices()  # the product meets a basket's items in column order (ties: module doc)
    return x


def _row_blocks(
    xt: sparse.csr_matrix, x: sparse.csr_matrix, *, block_products: int
) -> Iterator[tuple[int, int]]:
    """Consecutive (start, stop) rows of xt @ x whose products add up to `block_products` at
    most (a row alone may exceed it)."""
    basket_len = np.diff(x.indptr).astype(np.int64)
    # work of row i of xt @ x = sum of the lengths of the baskets containing i
    work = np.asarray(xt @ basket_len).ravel()
    n_items, start = len(work), 0
    while start < n_items:
        stop = start + 1
        budget = work[start]
        while stop < n_items and budget + work[stop] <= block_products:
            budget += work[stop]
            stop += 1
        yield start, stop
        start = stop


# one block's top entries: (entries per row, their columns, their scores)
_Top = tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.float32]]


@dataclass(frozen=True)
class _Block:
    """Rows start..start+n_rows-1 of the item x item product, as (row, col, baskets together)."""

    rows: NDArray[np.int64]  # within the block
    cols: NDArray[np.int32]
    together: NDArray[np.float32]
    n_rows: int
    self_pair: NDArray[np.bool_]  # an item is not its own neighbour

    @classmethod
    def of(cls, block: sparse.csr_matrix, *, start: int) -> _Block:
        rows = np.repeat(np.arange(block.shape[0]), np.diff(block.indptr))
        return cls(
            rows=rows, cols=block.indices, together=block.data, n_rows=block.shape[0],
            self_pair=start + rows == block.indices,
        )  # fmt: skip

    def top(self, scores: NDArray[np.float32], *, top_n: int) -> _Top:
        """Per row (rows ascending), its top_n positive `scores` (one per entry), best first."""
        scores[self.self_pair] = -1.0
        # one sort of a composite key: row ascending, then score descending (scores scaled into
        # [0, 1]; cheaper than a lexsort of the two keys); in float64, where two different
        # float32 scores stay apart (1 - score in float32 made neighbours a ulp apart ties)
        scale = max(1.0, float(scores.max(initial=0.0)))
        key = self.rows * 4.0 + (1.0 - scores.astype(np.float64) / scale)
        order = np.argsort(key, kind="stable")
        rows_sorted = self.rows[order]
        first = np.searchsorted(rows_sorted, np.arange(self.n_rows))
        rank = np.arange(len(order)) - first[rows_sorted]
        keep_mask = (rank < top_n) & (scores[order] > 0)
        keep = order[keep_mask]
        counts = np.bincount(rows_sorted[keep_mask], minlength=self.n_rows).astype(np.int64)
        return counts, self.cols[keep].astype(np.int32), scores[keep].astype(np.float32)


def _join(parts: list[_Top], n_items: int) -> Neighbours:
    if not parts:
        empty = np.zeros(n_items, dtype=np.int64)
        return Neighbours.from_row_counts(empty, np.zeros(0, np.int32), np.zeros(0, np.float32))
    return Neighbours.from_row_counts(
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
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
