"""The ensemble scorer over an open bundle: candidates from every source, features, one ranking.

Candidates for a seed come from each vector model's Annoy index, from each neighbour table of
the bundle (co-occurrence cosine and counts, transitions raw and recency-weighted) and from each
popularity (all-time, recency-weighted). Every candidate is then scored with every model (its
index's similarity: the cosine for angular indexes), every table and every popularity, plus its rank in each source's list; the
manifest's weights combine those features into one score. Plain Python and numpy: used offline to fit weights and evaluate, and by the service.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from indexes.bundle import Bundle
from indexes.bundle.layout import COOC, IDENTITY, LOG1P, POPULARITY
from indexes.bundle.neighbours import segments

ENSEMBLE = "ensemble"


def feature_names(
    models: list[str], tables: list[str] | None = None, pops: list[str] | None = None
) -> list[str]:
    """sim:<model> similarity per model (`AnnIndex.similarities`), each table's score (cooc cosine first, then co-occurrence
    counts and transitions where the bundle has them), each popularity (all-time first, then the
    recency-weighted ones), and rank:<source> = 1 / (1 + rank) of the candidate in each
    candidate list (0 when the list does not hold it). A bundle with only cooc and popularity
    (formats 1 and 2) has the names it always had."""
    tables = [COOC] if tables is None else tables
    pops = [POPULARITY] if pops is None else pops
    return (
        [f"sim:{m}" for m in models]
        + tables
        + pops
        + [f"rank:{m}" for m in [*models, *tables, *pops]]
    )


def default_weights(
    models: list[str], tables: list[str] | None = None, pops: list[str] | None = None
) -> dict[str, Any]:
    """Equal weights on every similarity: the placeholder until weights are fitted."""
    names = feature_names(models, tables, pops)
    pop_names = set(pops or [POPULARITY])
    return weights_spec(names, [0.0 if n in pop_names else 1.0 for n in names], fitted=False)


def weights_spec(features: list[str], weights: list[float], *, fitted: bool) -> dict[str, Any]:
    """The ensemble entry of the manifest for one entity: a weight per feature, no bias; the
    fit adds how it was fitted."""
    return {"features": features, "weights": weights, "bias": 0.0, "fitted": fitted}


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
        tables = bundle.tables.get(entity) or {COOC: self.cooc}
        self.table_names = list(tables)
        self.tables = [tables[t] for t in self.table_names]
        self.log_tables = [
            bundle.transforms.get((entity, t), IDENTITY) == LOG1P for t in self.table_names
        ]
        pops = bundle.popularity.get(entity) or {POPULARITY: bundle.entities[entity].listeners}
        self.pop_names = list(pops)
        self.per_source = candidates_per_source
        listeners = np.asarray(bundle.entities[entity].listeners, dtype=np.float64)
        self.n_items = len(listeners)
        # per popularity source: its top 1000 rows, and log1p(value) scaled to [0, 1]
        pop_arrays = [np.asarray(pops[name], dtype=np.float64) for name in self.pop_names]
        self.pop_tops = [top_rows(values, 1000) for values in pop_arrays]
        self.pop_values = [_scaled_log(values) for values in pop_arrays]
        self.popular = self.pop_tops[0]  # all-time popularity (listeners)
        self.log_pop = np.log1p(listeners).astype(np.float32)
        self.log_pop_max = float(self.log_pop.max(initial=0.0)) or 1.0
        self.names = feature_names(self.models, self.table_names, self.pop_names)
        spec = weights if weights is not None else bundle.ensemble(entity)
        w = dict(zip(spec["features"], spec["weights"], strict=True))
        self.weights = np.asarray([w.get(n, 0.0) for n in self.names], dtype=np.float32)
        self.bias = float(spec.get("bias", 0.0))

    def sources(self) -> list[str]:
        return [*self.models, *self.table_names, *self.pop_names, ENSEMBLE]

    def check_row(self, row: int) -> None:
        if not 0 <= row < self.n_items:
            raise IndexError(f"{self.entity} row {row} out of range")

    def top(
        self, row: int, k: int, *, source: str = ENSEMBLE, per_source: int | None = None
    ) -> tuple[NDArray[np.int32], NDArray[np.float32]]:
        """The k best rows for `row` from one source (a model, a table such as cooc, a
        popularity, or the ensemble).

        `per_source` overrides how many candidates the ensemble takes from each source (more for
        long lists such as the 250 radio neighbours)."""
        self.check_row(row)
        if source == ENSEMBLE:
            return self.rank(row, k, per_source=per_source)
        if source in self.table_names:
            idx, sc = self.tables[self.table_names.index(source)].row(row)
            return np.asarray(idx[:k], dtype=np.int32), np.asarray(sc[:k], dtype=np.float32)
        if source in self.pop_names:
            j = self.pop_names.index(source)
            top = self.pop_tops[j]
            if k >= len(top) and len(top) < self.n_items:
                top = top_rows(np.asarray(self.pop_values[j], dtype=np.float64), k + 1)
            rows = top[top != row][:k]
            return rows, self.pop_values[j][rows]
        if source in self.models:
            ann = self.bundle.indexes[(source, self.entity)]
            rows, dist = ann.neighbours(row, k)
            return rows, ann.similarity_of_distance(dist)
        raise KeyError(f"unknown source {source!r}; one of {self.sources()}")

    def candidate_lists(self, row: int, per_source: int | None = None) -> list[NDArray[np.int32]]:
        """The ranked candidates of each source: every model's ANN neighbours, every table's
        row, every popularity's top (in the order of `sources`)."""
        n = self.per_source if per_source is None else per_source
        lists = [ann.neighbours(row, n)[0] for ann in self.anns]
        lists.extend(np.asarray(t.row(row)[0][:n], dtype=np.int32) for t in self.tables)
        lists.extend(top[: n + 1] for top in self.pop_tops)
        return lists

    def candidates(
        self, row: int, lists: list[NDArray[np.int32]] | None = None
    ) -> NDArray[np.int32]:
        lists = self.candidate_lists(row) if lists is None else lists
        cands = sorted_unique(np.concatenate(lists)) if lists else np.zeros(0, dtype=np.int32)
        return cands[cands != row].astype(np.int32)

    def features(
        self, row: int, cands: NDArray[np.int32], lists: list[NDArray[np.int32]] | None = None
    ) -> NDArray[np.float32]:
        """One row of features per candidate; `cands` sorted ascending (as `candidates` gives)."""
        lists = self.candidate_lists(row) if lists is None else lists
        x = np.zeros((len(cands), len(self.names)), dtype=np.float32)
        j = 0
        for ann in self.anns:
            x[:, j] = ann.similarities(row, cands)
            j += 1
        for table, log in zip(self.tables, self.log_tables, strict=True):
            idx, sc = table.row(row)
            _scatter(x[:, j], cands, idx, np.log1p(sc) if log else sc)
            j += 1
        for values in self.pop_values:
            x[:, j] = values[cands]
            j += 1
        for ranked in lists:
            recip = 1.0 / (1.0 + np.arange(len(ranked), dtype=np.float32))
            _scatter(x[:, j], cands, ranked, recip)
            j += 1
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

    def rank_many(
        self, rows: Sequence[int] | NDArray[np.integer[Any]], k: int, *,
        per_source: int | None = None,
    ) -> RankedBatch:  # fmt: skip
        """`rank` of each of `rows`, over all of them at once: the same candidates, features,
        scores and order as `rank` gives row by row. The candidate lists, their union, the table
        and rank features, the order and the cut are numpy over the whole batch; the model
        similarities and the weighted sum stay one call per row, as `rank` makes them, because a
        BLAS product over another shape may round differently (the lists must not depend on how
        rows were batched)."""
        seeds = np.asarray(rows, dtype=np.int64)
        for row in seeds.tolist():
            self.check_row(row)
        n = self.per_source if per_source is None else per_source
        lists = self._candidate_lists_many(seeds, n)
        n_items = np.int64(self.n_items)
        keys = sorted_unique(np.concatenate([seg * n_items + c for c, seg, _ in lists]))
        cands, seg = (keys % n_items).astype(np.int32), keys // n_items
        own = cands == seeds[seg]
        keys, cands, seg = keys[~own], cands[~own], seg[~own]
        bounds = np.searchsorted(seg, np.arange(len(seeds) + 1))
        x = self._features_many(seeds, keys=keys, cands=cands, bounds=bounds, lists=lists)
        scores = np.empty(len(cands), dtype=np.float32)
        for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            if b > a:  # a fresh array, as `features` gives `rank`: the product sees the same memory
                scores[a:b] = x[a:b].copy() @ self.weights + self.bias
        order = np.lexsort((-scores, seg))  # by seed, then best first; ties in candidate order
        kept = order[segments(np.diff(bounds))[1] < k]
        return RankedBatch.of(cands[kept], scores[kept], lists=seg[kept], n=len(seeds))

    def _candidate_lists_many(
        self, seeds: NDArray[np.int64], n: int
    ) -> list[tuple[NDArray[np.int32], NDArray[np.int64], NDArray[np.int64]]]:
        """`candidate_lists` of every seed, per source: the candidates one seed after the other,
        each candidate's seed (position in `seeds`) and its place in that seed's list."""
        out = []
        for ann in self.anns:
            got = [ann.neighbours(row, n)[0] for row in seeds.tolist()]
            seg, place = segments(np.asarray([len(g) for g in got], dtype=np.int64))
            flat = np.concatenate(got) if got else np.zeros(0, dtype=np.int32)
            out.append((flat.astype(np.int32), seg, place))
        for table in self.tables:
            idx, _, seg, place = table.rows_of(seeds, limit=n)
            out.append((np.asarray(idx, dtype=np.int32), seg, place))
        for top in self.pop_tops:
            head = top[: n + 1]
            seg, place = segments(np.full(len(seeds), len(head), dtype=np.int64))
            out.append((np.tile(head, len(seeds)), seg, place))
        return out

    def _features_many(
        self,
        seeds: NDArray[np.int64],
        *,
        keys: NDArray[np.int64],
        cands: NDArray[np.int32],
        bounds: NDArray[np.int64],
        lists: list[tuple[NDArray[np.int32], NDArray[np.int64], NDArray[np.int64]]],
    ) -> NDArray[np.float32]:
        """`features` of every seed's candidates, one seed after the other (`keys`: seed
        position × n_items + candidate, ascending; `bounds`: where each seed's rows start)."""
        x = np.zeros((len(cands), len(self.names)), dtype=np.float32)
        n_items = np.int64(self.n_items)
        j = 0
        for ann in self.anns:
            for i, row in enumerate(seeds.tolist()):
                a, b = int(bounds[i]), int(bounds[i + 1])
                x[a:b, j] = ann.similarities(row, cands[a:b])
            j += 1
        for table, log in zip(self.tables, self.log_tables, strict=True):
            idx, sc, seg, _ = table.rows_of(seeds)
            _scatter(x[:, j], keys, seg * n_items + idx, np.log1p(sc) if log else sc)
            j += 1
        for values in self.pop_values:
            x[:, j] = values[cands]
            j += 1
        for ranked, seg, place in lists:
            recip = 1.0 / (1.0 + place.astype(np.float32))
            _scatter(x[:, j], keys, seg * n_items + ranked, recip)
            j += 1
        return x


@dataclass(frozen=True)
class RankedBatch:
    """Ranked lists of several seeds one after the other: list i is rows[bounds[i]:bounds[i+1]]
    with the same slice of scores, best first."""

    rows: NDArray[np.int32]
    scores: NDArray[np.float32]
    bounds: NDArray[np.int64]

    @classmethod
    def of(
        cls,
        rows: NDArray[np.int32],
        scores: NDArray[np.float32],
        *,
        lists: NDArray[np.int64],
        n: int,
    ) -> RankedBatch:
        """From items in list order and each item's list (0 .. n-1)."""
        return cls(rows=rows, scores=scores, bounds=np.searchsorted(lists, np.arange(n + 1)))

    def __len__(self) -> int:
        return len(self.bounds) - 1

    def lists(self) -> NDArray[np.int64]:
        """Each item's list."""
        return segments(np.diff(self.bounds))[0]

    def one(self, i: int) -> tuple[NDArray[np.int32], NDArray[np.float32]]:
        a, b = int(self.bounds[i]), int(self.bounds[i + 1])
        return self.rows[a:b], self.scores[a:b]

    def capped(self, *, artist: NDArray[np.integer[Any]], cap: int, limit: int) -> RankedBatch:
        """Each list with at most `cap` items of one artist and cut at `limit`
        (`recommend.cap_per_artist` of each)."""
        lists = self.lists()
        kept = capped_positions(np.asarray(artist)[self.rows], cap=cap, lists=lists)
        kept = kept[segments(np.bincount(lists[kept], minlength=len(self)))[1] < limit]
        return RankedBatch.of(self.rows[kept], self.scores[kept], lists=lists[kept], n=len(self))


def capped_positions(
    artists: NDArray[np.integer[Any]], *, cap: int, lists: NDArray[np.int64] | None = None
) -> NDArray[np.int64]:
    """Positions of a ranked list to keep so that at most `cap` items of one artist remain, in
    order (`artists`: the artist row of each item). With `lists` (each item's list, for several
    ranked lists one after the other), the cap holds within each list."""
    a = np.asarray(artists, dtype=np.int64)
    if lists is not None and len(a):  # one group per (list, artist)
        low = int(a.min())
        a = np.asarray(lists, dtype=np.int64) * (int(a.max()) - low + 1) + (a - low)
    if len(a) == 0:
        return np.zeros(0, dtype=np.int64)
    # each item's place among the items of its artist so far: a stable sort groups the artists
    # and keeps their order, and the place is the position minus the start of the group
    order = np.argsort(a, kind="stable")
    grouped = a[order]
    new_group = np.ones(len(a), dtype=bool)
    new_group[1:] = grouped[1:] != grouped[:-1]
    starts = np.flatnonzero(new_group)
    place = np.empty(len(a), dtype=np.int64)
    place[order] = np.arange(len(a)) - np.repeat(starts, np.diff(np.append(starts, len(a))))
    return np.flatnonzero(place < cap)


def sorted_unique(values: NDArray[Any]) -> NDArray[Any]:
    """np.unique of integers (sorted, each once) by a sort and a neighbour compare: numpy 2.4's
    np.unique is far slower on these keys than np.sort (figures in loadtest/README)."""
    out = np.sort(values)
    if len(out) < 2:
        return out
    keep = np.empty(len(out), dtype=bool)
    keep[0] = True
    np.not_equal(out[1:], out[:-1], out=keep[1:])
    return out[keep]


def top_rows(values: NDArray[np.float64], k: int) -> NDArray[np.int32]:
    """Rows of the k largest values, largest first (ties by row)."""
    k = min(k, len(values))
    if k <= 0:
        return np.zeros(0, dtype=np.int32)
    part = np.argpartition(-values, k - 1)[:k]
    order = np.lexsort((part, -values[part]))
    return part[order].astype(np.int32)


def _scaled_log(values: NDArray[np.float64]) -> NDArray[np.float32]:
    """log1p of the non-negative part, scaled so that the largest is 1."""
    logs = np.log1p(np.maximum(values, 0.0))
    return (logs / (float(logs.max(initial=0.0)) or 1.0)).astype(np.float32)


def _scatter(
    out: NDArray[np.float32],
    sorted_keys: NDArray[np.integer[Any]],
    keys: NDArray[np.integer[Any]],
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
