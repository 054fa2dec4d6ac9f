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
    """sim:<model> cosine per model, cooc cosine, popularity, and rank:<source> = 1 / (1 + rank)
    of the candidate in each candidate list (0 when the list does not hold it)."""
    return (
        [f"sim:{m}" for m in models]
        + [COOC, POPULARITY]
        + [f"rank:{m}" for m in [*models, COOC, POPULARITY]]
    )


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
        self, row: int, k: int, *, source: str = ENSEMBLE, per_source: int | None = None
    ) -> tuple[NDArray[np.int32], NDArray[np.float32]]:
        """The k best rows for `row` from one source (a model name, cooc, popularity, ensemble).

        `per_source` overrides how many candidates the ensemble takes from each source (more for
        long lists such as the 250 radio neighbours)."""
        self.check_row(row)
        if source == ENSEMBLE:
            return self.rank(row, k, per_source=per_source)
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

    def candidate_lists(self, row: int, per_source: int | None = None) -> list[NDArray[np.int32]]:
        """The ranked candidates of each source: every model's ANN neighbours, cooc, popularity."""
        n = self.per_source if per_source is None else per_source
        lists = [ann.neighbours(row, n)[0] for ann in self.anns]
        lists.append(np.asarray(self.cooc.row(row)[0][:n], dtype=np.int32))
        lists.append(self.popular[: n + 1])
        return lists

    def candidates(
        self, row: int, lists: list[NDArray[np.int32]] | None = None
    ) -> NDArray[np.int32]:
        lists = self.candidate_lists(row) if lists is None else lists
        cands = np.unique(np.concatenate(lists)) if lists else np.zeros(0, dtype=np.int32)
        return cands[cands != row].astype(np.int32)

    def features(
        self, row: int, cands: NDArray[np.int32], lists: list[NDArray[np.int32]] | None = None
    ) -> NDArray[np.float32]:
        """One row of features per candidate; `cands` sorted ascending (as `candidates` gives)."""
        lists = self.candidate_lists(row) if lists is None else lists
        n_models = len(self.anns)
        x = np.zeros((len(cands), len(self.names)), dtype=np.float32)
        for j, ann in enumerate(self.anns):
            x[:, j] = ann.similarities(row, cands)
        idx, sc = self.cooc.row(row)
        _scatter(x[:, n_models], cands, idx, sc)
        x[:, n_models + 1] = self.log_pop[cands] / self.log_pop_max
        for j, ranked in enumerate(lists):
            recip = 1.0 / (1.0 + np.arange(len(ranked), dtype=np.float32))
            _scatter(x[:, n_models + 2 + j], cands, ranked, recip)
        return x

    def rank(
        self, row: int, k: int, *, per_source: int | None = None
    ) -> tuple[NDArray[np.int32], NDArray[np.float32]]:
        lists = self.candidate_lists(row, per_source)
        cands = self.candidates(row, lists)
        if len(cands) == 0:
            return cands, np.zeros(0, dtype=np.float32)
        scores = self.features(row, cands, lists) @ self.weights + self.bias
        order = np.argsort(-scores, kind="stable")[:k]
        return cands[order], scores[order].astype(np.float32)


def _scatter(
    out: NDArray[np.float32],
    sorted_keys: NDArray[np.int32],
    keys: NDArray[np.int32],
    values: NDArray[np.float32],
) -> None:
    """out[i] = values[j] where sorted_keys[i] == keys[j]; entries of `keys` that are not
    among `sorted_keys` (ascending, unique) are ignored. One binary search per key."""
    if len(keys) == 0 or len(sorted_keys) == 0:
        return
    pos = np.searchsorted(sorted_keys, keys)
    pos[pos == len(sorted_keys)] = 0
    hit = sorted_keys[pos] == keys
    out[pos[hit]] = np.asarray(values, dtype=np.float32)[hit]
