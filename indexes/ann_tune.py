"""Chooses each Annoy index's search_k by measuring recall@10 against exact brute force.

On a sample of indexed items, the exact top 10 (cosine) is computed with numpy; then the index
is queried with growing search_k until recall@10 reaches the target, or search_k reaches its cap
(a bound on the work, hence the latency, of one query: on a large catalogue whose vectors have no
low-dimensional structure the search_k that reaches the target can be far too slow to serve;
loadtest/README.md). The chosen search_k,
the measured recall and latency, and whether the target was met go into the manifest, so the
service asks each index for just enough work.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from indexes.bundle.layout import Tuning
from indexes.bundle.metrics import cosine_to_angular
from indexes.models.base import normalise_rows

K = 10
CANDIDATES = (500, 750, 1000, 1250, 1500, 1750, 2000, 2500, 3000, 5000, 10000, 20000, 50000)


@dataclass(frozen=True)
class Tuned:
    search_k: int
    recall: float
    ms_per_query: float
    target: float | None = None  # None: search_k was given, not tuned

    def tuning(self) -> Tuning:
        """What the manifest's index entry records of it."""
        return Tuning(
            search_k=self.search_k,
            recall_at_10=round(self.recall, 4),
            ms_per_query=round(self.ms_per_query, 4),
            recall_target=self.target,
            recall_target_met=None if self.target is None else not self.missed_target,
        )

    def to_json(self) -> dict[str, Any]:
        return self.tuning().to_json()

    @property
    def missed_target(self) -> bool:
        """Tuned, and the recall stayed below the target (search_k hit its cap)."""
        return self.target is not None and self.recall < self.target


# ann-benchmarks' tolerance: a returned item is a hit when its distance to the query is at most
# the k-th exact distance + 1e-3. Annoy's angular distance is sqrt(2 - 2 cos), so near cos 1 this
# is a much smaller step in cosine than 1e-3 (at cos 0.995, about 1e-4).
EPSILON = 1e-3


@dataclass(frozen=True)
class Exact:
    """Exact cosine neighbours of some query slots: their ids and the k-th best similarity."""

    queries: NDArray[np.int64]
    top: NDArray[np.int64]
    kth: NDArray[np.float32]
    unit: NDArray[np.float32]


def exact_top(vectors: NDArray[np.float32], queries: NDArray[np.int64], *, k: int = K) -> Exact:
    """Exact cosine top k of each query slot (itself excluded), by brute force in chunks."""
    unit = normalise_rows(vectors)
    top = np.empty((len(queries), k), dtype=np.int64)
    kth = np.empty(len(queries), dtype=np.float32)
    for a in range(0, len(queries), 32):
        q = queries[a : a + 32]
        sims = unit[q] @ unit.T
        sims[np.arange(len(q)), q] = -np.inf
        best = np.argpartition(-sims, k, axis=1)[:, :k]
        top[a : a + 32] = best
        kth[a : a + 32] = np.take_along_axis(sims, best, axis=1).min(axis=1)
    return Exact(queries=queries, top=top, kth=kth, unit=unit)


def hits(sims: Any, kth: float) -> Any:
    """Which returned items (cosine `sims` to the query) count as found, as in ann-benchmarks:
    their angular distance is within EPSILON of the k-th exact neighbour's (cosine `kth`)."""
    return cosine_to_angular(sims) <= cosine_to_angular(kth) + EPSILON


def recall_at(index: Any, exact: Exact, *, search_k: int) -> tuple[float, float]:
    """(recall@10, ms per query) of `index` at `search_k`.

    As in ann-benchmarks, a returned item counts as a hit when its angular distance to the query
    is within EPSILON of the 10th exact one: among items that tie with the 10th neighbour (the
    content model gives many tracks the same vector) any pick is a correct answer."""
    start = time.perf_counter()
    results = [index.get_nns_by_item(int(q), K + 1, search_k=search_k) for q in exact.queries]
    ms = (time.perf_counter() - start) * 1000 / max(1, len(exact.queries))
    found = 0
    for i, (q, got) in enumerate(zip(exact.queries.tolist(), results, strict=True)):
        got = [g for g in got if g != q][:K]
        if got:
            sims = exact.unit[got] @ exact.unit[q]
            found += int(hits(sims, float(exact.kth[i])).sum())
    return found / (K * max(1, len(exact.queries))), ms


def tune_search_k(
    index: Any,
    vectors: NDArray[np.float32],
    *,
    target: float = 0.95,
    queries: int = 1000,
    seed: int = 0,
    candidates: tuple[int, ...] = CANDIDATES,
    max_search_k: int | None = None,
) -> Tuned:
    """The smallest candidate search_k whose recall@10 reaches `target`; else the largest
    candidate up to `max_search_k` (its recall below the target, which `Tuned` records)."""
    n = len(vectors)
    if n <= K + 1:
        return Tuned(search_k=-1, recall=1.0, ms_per_query=0.0, target=target)
    if max_search_k is not None:
        candidates = tuple(c for c in candidates if c <= max_search_k) or (max_search_k,)
    rng = np.random.default_rng(seed)
    sample = rng.choice(n, size=min(queries, n), replace=False).astype(np.int64)
    exact = exact_top(vectors, sample)
    index.get_nns_by_item(int(sample[0]), K + 1, search_k=candidates[0])  # warm the mapping
    best = Tuned(search_k=candidates[-1], recall=0.0, ms_per_query=0.0, target=target)
    for sk in candidates:
        recall, ms = recall_at(index, exact, search_k=sk)
        best = Tuned(search_k=sk, recall=recall, ms_per_query=ms, target=target)
        if recall >= target or sk >= n * 2:
            break
    return best
