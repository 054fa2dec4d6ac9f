"""One distance -> similarity conversion per Annoy metric, checked against brute-force numpy on
small real indexes written and opened the way a bundle's are."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from indexes.bundle.read import AnnIndex, _Files, _open_index
from indexes.bundle.write import BundleWriter

N, DIMS = 80, 6


def brute(metric: str, q: NDArray[np.float64], m: NDArray[np.float64]) -> NDArray[np.float64]:
    """What "similar" means for each metric, larger = closer, written out independently."""
    if metric == "angular":
        return (m @ q) / (np.linalg.norm(m, axis=1) * np.linalg.norm(q))
    if metric == "dot":
        return m @ q
    if metric == "euclidean":
        return -np.sqrt(((m - q) ** 2).sum(axis=1))
    return -np.abs(m - q).sum(axis=1)  # manhattan


def opened(tmp_path: Path, metric: str, vectors: NDArray[np.float32], **kw: object) -> AnnIndex:
    """An index of every row but the last (which has no vector), written by BundleWriter and
    opened with the loader's checks."""
    writer = BundleWriter(tmp_path / metric)
    mask = np.ones(len(vectors), dtype=bool)
    mask[-1] = False
    entry = writer.annoy(
        model="m", entity="tracks", vectors=vectors, mask=mask, metric=metric, n_trees=5, seed=1
    )
    return _open_index(
        _Files(writer.dir, writer.files), entry, n_rows=len(vectors), check_tree=True, **kw
    )  # type: ignore[arg-type]


@pytest.fixture
def vectors() -> NDArray[np.float32]:
    return np.random.default_rng(3).normal(size=(N, DIMS)).astype(np.float32)


@pytest.mark.parametrize("metric", ["angular", "dot", "euclidean", "manhattan"])
def test_every_way_of_asking_gives_the_brute_force_similarity(
    tmp_path: Path, metric: str, vectors: NDArray[np.float32]
) -> None:
    calls: list[tuple[str, str, float]] = []
    ann = opened(tmp_path, metric, vectors, observer=lambda *a: calls.append(a))
    v = vectors.astype(np.float64)
    known = np.arange(N - 1)
    row = 4
    exact = brute(metric, v[row], v[known])
    exact_order = [int(r) for r in known[np.argsort(-exact, kind="stable")] if r != row][:10]

    rows, dists = ann.neighbours(row, 10, search_k=100_000)  # exhaustive on 79 items
    sims = ann.similarity_of_distance(dists)
    assert rows.tolist() == exact_order
    assert np.allclose(sims, brute(metric, v[row], v[rows]), atol=1e-4)
    assert (np.diff(sims) <= 1e-6).all()  # best first, as every source ranks

    assert ann.similarity(row, int(rows[0])) == pytest.approx(float(sims[0]), abs=1e-4)
    assert ann.similarity(row, N - 1) == 0.0  # no vector
    fast = ann.similarities(row, np.arange(N, dtype=np.int32))
    assert np.allclose(fast[:-1], brute(metric, v[row], v[known]), atol=1e-4)
    assert fast[-1] == 0.0
    slow = [ann.similarity(row, r) for r in range(N)]
    assert np.allclose(fast, slow, atol=1e-4)

    query = np.random.default_rng(4).normal(size=DIMS).astype(np.float32)
    got_rows, got_sims = ann.nearest_to_vector(query, n=5, search_k=100_000)
    want = brute(metric, query.astype(np.float64), v[known])
    assert got_rows.dtype == np.int32 and got_sims.dtype == np.float32
    assert got_rows.tolist() == known[np.argsort(-want, kind="stable")][:5].tolist()
    assert np.allclose(got_sims, want[got_rows], atol=1e-4)
    # what the service computed from Annoy directly before it had nearest_to_vector
    slots, dists = ann.index.get_nns_by_vector(
        query.tolist(), 5, search_k=100_000, include_distances=True
    )
    assert got_rows.tolist() == ann.rows[slots].tolist()
    assert got_sims.tolist() == ann.similarity_of_distance(np.asarray(dists, np.float32)).tolist()

    assert [(m, e) for m, e, _ in calls] == [("m", "tracks")] * 2  # both queries observed
    assert all(seconds >= 0 for _, _, seconds in calls)
