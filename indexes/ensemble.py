"""The ensemble scorer over an open bundle: candidates from every source, features, one ranking.

Candidates for a seed come from each vector model's Annoy index and from the co-occurrence
neighbours. Every candidate is then scored with every model (cosine similarity), the
co-occurrence cosine and its popularity; the manifest's weights combine those features into one
score. Plain Python and numpy: used offline to fit weights and evaluate, and by the service.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from indexes.bundle import Bundle

COOC = "cooc"
POPULARITY = "popularity"
ENSEMBLE = "ensemble"


def feature_names(models: list[str]) -> list[str]:
    return [f"sim:{m}" for m in models] + [COOC, POPULARITY]


def default_weights(models: list[str]) -> dict[str, Any]:
    """Equal weights on every similarity: the placeholder until weights are fitted."""
    names = feature_names(models)
    return {
        "features": names,
        "weights": [0.0 if n == POPULARITY else 1.0 for n in names],
        "bias": 0.0,
        "fitted": False,
    }


class Scorer:
    """Ranks the neighbours of one entity ("tracks" or "artists") of a bundle."""

    def __init__(
        self,
        bundle: Bundle,
        *,
        entity: str,
        candidates_per_source: int = 50,
        weights: dict[str, Any] | None = None,
    ) -> None:
        self.bundle, self.entity = bundle, entity
        self.models = bundle.models(entity)
        self.anns = [bundle.indexes[(m, entity)] for m in self.models]
        self.cooc = bundle.cooc[entity]
        self.per_source = candidates_per_source
        listeners = np.asarray(bundle.entities[entity].listeners, dtype=np.float64)
        self.n_items = len(listeners)
        top = min(self.n_items, 1000)
        popular = np.argpartition(-listeners, top - 1)[:top] if top else np.zeros(0, dtype=np.int64)
        self.popular = popular[np.argsort(-listeners[popular], kind="stable")].astype(np.int32)
        self.log_pop = np.log1p(listeners).astype(np.float32)
        self.log_pop_max = float(self.log_pop.max(initial=0.0)) or 1.0
        self.names = feature_names(self.models)
        spec = weights if weights is not None else bundle.ensemble(entity)
        w = dict(zip(spec["features"], spec["weights"], strict=True))
        self.weights = np.asarray([w.get(n, 0.0) for n in self.names], dtype=np.float32)
        self.bias = float(spec.get("bias", 0.0))

    def sources(self) -> list[str]:
        return [*self.models, COOC, POPULARITY, ENSEMBLE]

    def check_row(self, row: int) -> None:
        if not 0 <= row < self.n_items:
            raise IndexError(f"{self.entity} row {row} out of range")

    def top(
        self, row: int, k: int, *, source: str = ENSEMBLE
    ) -> tuple[NDArray[np.int32], NDArray[np.float32]]:
        """The k best rows for `row` from one source (a model name, cooc, popularity, ensemble)."""
        self.check_row(row)
        if source == ENSEMBLE:
            return self.rank(row, k)
        if source == COOC:
            idx, sc = self.cooc.row(row)
            return np.asarray(idx[:k], dtype=np.int32), np.asarray(sc[:k], dtype=np.float32)
        if source == POPULARITY:
            rows = self.popular[self.popular != row][:k]
            return rows, self.log_pop[rows] / self.log_pop_max
        if source in self.models:
            ann = self.bundle.indexes[(source, self.entity)]
            rows, dist = ann.neighbours(row, k)
            sims = 1.0 - dist * dist / 2.0 if ann.metric == "angular" else -dist
            return rows, sims.astype(np.float32)
        raise KeyError(f"unknown source {source!r}; one of {self.sources()}")

    def candidates(self, row: int) -> NDArray[np.int32]:
        parts = [ann.neighbours(row, self.per_source)[0] for ann in self.anns]
        parts.append(np.asarray(self.cooc.row(row)[0][: self.per_source], dtype=np.int32))
        cands = np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int32)
        return cands[cands != row].astype(np.int32)

    def features(self, row: int, cands: NDArray[np.int32]) -> NDArray[np.float32]:
        x = np.zeros((len(cands), len(self.names)), dtype=np.float32)
        clist = cands.tolist()
        for j, ann in enumerate(self.anns):
            x[:, j] = [ann.similarity(row, c) for c in clist]
        idx, sc = self.cooc.row(row)
        if len(idx):
            order = np.argsort(idx)
            sorted_idx = idx[order]
            pos = np.searchsorted(sorted_idx, cands)
            pos = np.minimum(pos, len(sorted_idx) - 1)
            hit = sorted_idx[pos] == cands
            x[hit, len(self.anns)] = sc[order][pos[hit]]
        x[:, len(self.anns) + 1] = self.log_pop[cands] / self.log_pop_max
        return x

    def rank(self, row: int, k: int) -> tuple[NDArray[np.int32], NDArray[np.float32]]:
        cands = self.candidates(row)
        if len(cands) == 0:
            return cands, np.zeros(0, dtype=np.float32)
        scores = self.features(row, cands) @ self.weights + self.bias
        order = np.argsort(-scores, kind="stable")[:k]
        return cands[order], scores[order].astype(np.float32)
