"""Co-occurrence neighbours (cosine and plain counts from one product, against the exact one,
in bounded row blocks, long baskets cut) and popularity."""

from __future__ import annotations

import numpy as np
from scipy import sparse

from indexes.models.cooccurrence import cooccurrence_neighbours, cooccurrence_tables, popularity


def test_cooccurrence_counts_and_cosine_from_one_product() -> None:
    rng = np.random.default_rng(3)
    x = sparse.random(300, 40, density=0.15, format="csr", random_state=rng)
    cos, count = cooccurrence_tables(x, top_n=7)
    assert cos.indices.tolist() == cooccurrence_neighbours(x, top_n=7).indices.tolist()
    b = (x > 0).astype(np.float64)
    exact = np.asarray((b.T @ b).todense())
    np.fill_diagonal(exact, 0)
    for i in range(40):
        idx, sc = count.row(i)
        assert len(idx) == min(7, int((exact[i] > 0).sum()))
        assert sc.tolist() == exact[i][idx].tolist()
        assert list(sc) == sorted(sc, reverse=True)
        # nothing left out beats the last one kept
        assert exact[i][np.setdiff1d(np.arange(40), [*idx, i])].max(initial=0) <= sc[-1]
        assert i not in idx


def test_ties_keep_the_pair_that_met_latest_then_the_higher_column() -> None:
    """The tie order the Spark engine copies (module docstring): item 0 meets 1 and 2 in
    basket 0, 3 in basket 1, 4 and 5 in basket 2, once each; with room for 3, the pairs of
    basket 2 and then basket 1 are kept, within a basket the higher column first. It rests on
    the order of scipy's product: a scipy that changes it fails here."""
    baskets = [[0, 1, 2], [0, 3], [0, 4, 5], [1, 2]]
    x = sparse.csr_matrix(
        (np.ones(sum(map(len, baskets))), (np.repeat(np.arange(4), [len(b) for b in baskets]),
                                           np.concatenate(baskets))),
        shape=(4, 6),
    )  # fmt: skip
    cos, count = cooccurrence_tables(x, top_n=3)
    assert count.row(0)[0].tolist() == [5, 4, 3]
    assert count.row(0)[1].tolist() == [1.0, 1.0, 1.0]
    assert count.row(1)[0].tolist() == [2, 0]  # 2 met 1 twice
    assert cos.row(3)[0].tolist() == [0]


def test_the_row_blocks_bound_memory_without_changing_the_neighbours() -> None:
    x = sparse.random(200, 30, density=0.2, format="csr", random_state=np.random.default_rng(5))
    whole_cos, whole_count = cooccurrence_tables(x, top_n=5)
    row_cos, row_count = cooccurrence_tables(x, top_n=5, block_products=1)  # a block per row
    for whole, rows in ((whole_cos, row_cos), (whole_count, row_count)):
        assert whole.indices.tolist() == rows.indices.tolist()
        assert whole.scores.tolist() == rows.scores.tolist()


def test_a_long_basket_keeps_its_heaviest_items_and_the_input_is_left_alone() -> None:
    weights = np.asarray([[5.0, 4.0, 3.0, 2.0, 1.0]], dtype=np.float32)
    baskets = sparse.csr_matrix(weights)
    nb = cooccurrence_neighbours(baskets, top_n=10, max_per_basket=3)
    assert [sorted(nb.row(i)[0].tolist()) for i in range(5)] == [[1, 2], [0, 2], [0, 1], [], []]
    assert baskets.data.tolist() == weights.ravel().tolist()  # counts not turned into presence


def test_popularity_counts_the_baskets_that_hold_an_item() -> None:
    baskets = sparse.csr_matrix(np.asarray([[3.0, 1.0, 0.0], [7.0, 0.0, 0.0]]))
    baskets.data[baskets.indices == 1] = 0.0  # a stored zero is not a play
    assert popularity(baskets).tolist() == [2.0, 0.0, 0.0]
