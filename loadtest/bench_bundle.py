"""Benchmark: build time of a synthetic bundle, and Annoy recall@10 / latency against brute force.

    python loadtest/bench_bundle.py [--sizes 100000,1000000] [--trees N]
        [--search-k 500,1000,1500,2000,3000,5000,10000] [--queries 1000] [--out DIR] [--keep]
    python loadtest/bench_bundle.py --measure BUNDLE_DIR [--search-k ...] [--queries 1000]

For each size: generate the synthetic catalogue, build and publish a bundle with the default
models, then for every track index measure recall@10 and ms per query of `get_nns_by_item` at
each search_k against exact cosine neighbours computed with numpy. Figures go to stdout, one per
line as `key=value` pairs (greppable, stable); pipeline progress goes to stderr. Not a test.

Each index is also measured at the search_k its manifest entry holds (what the service asks
for): `check=ann_chosen_search_k`. The queries are a random sample drawn apart from the build's
tuning sample, and `ms_per_query` is the median of three timed passes over them (one untimed pass
first pages the index in).

`--measure` skips the build and measures the track indexes of an existing bundle.

Two recalls are printed: `recall@10` counts only exact ties with the 10th neighbour as hits, and
`ab_recall@10` is ann-benchmarks' definition (a hit is within 1e-3 of the 10th exact angular
distance; what `segue build` tunes search_k with). The checks are made for both.

Targets (1M tracks): the whole build (generation included) in <= 20 minutes; ANN recall@10 >= 0.95
at <= 0.5 ms per query.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from indexes.ann_tune import hits
from indexes.bundle import AnnIndex, open_bundle
from indexes.datasets.synthetic import generate_synthetic
from indexes.pipeline import BuildConfig, build_bundle
from indexes.progress import log
from loadtest.common import emit

K = 10
RECALL_TARGET = 0.95
MS_TARGET = 0.5
BUILD_TARGET_SECONDS = 1200.0
TIE_EPS = 1e-6  # similarities this close to the 10th exact one count as ties
CHUNK = 32  # queries per brute-force matrix product (32 x 1M float32 = 128 MB)
PASSES = 3  # timed passes over the queries at each search_k; ms_per_query is their median
QUERY_STREAM = 1  # the bench's queries come from default_rng([seed, QUERY_STREAM])


@dataclass(frozen=True)
class Point:
    """One (model, search_k) measurement."""

    model: str
    search_k: int
    recall: float
    ab_recall: float
    ms_per_query: float


def stage_key(name: str) -> str:
    """'annoy als.tracks (95000 items)' -> 'annoy_als.tracks'; 'train als' -> 'train_als'."""
    name = re.sub(r"\s*\(.*?\)", "", name).strip()
    return re.sub(r"[^A-Za-z0-9_.]+", "_", name)


def directory_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def unit_vectors(index: AnnIndex) -> NDArray[np.float32]:
    """Every item vector of the index (slot order) as one row-normalised float32 matrix."""
    m = np.empty((index.n_items, index.dims), dtype=np.float32)
    get = index.index.get_item_vector
    for slot in range(index.n_items):
        m[slot] = get(slot)
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    np.divide(m, norms, out=m, where=norms > 0)
    return m


def exact_neighbours(
    *, unit: NDArray[np.float32], queries: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Exact top-K slots by cosine for each query (the query itself excluded), best first, and
    each query's K-th best similarity."""
    top = np.empty((len(queries), K), dtype=np.int64)
    kth = np.empty(len(queries), dtype=np.float32)
    for start in range(0, len(queries), CHUNK):
        q = queries[start : start + CHUNK]
        sims = unit[q] @ unit.T
        sims[np.arange(len(q)), q] = -np.inf
        part = np.argpartition(sims, -K, axis=1)[:, -K:]
        part_sims = np.take_along_axis(sims, part, axis=1)
        order = np.argsort(-part_sims, axis=1, kind="stable")
        top[start : start + len(q)] = np.take_along_axis(part, order, axis=1)
        kth[start : start + len(q)] = np.take_along_axis(part_sims, order, axis=1)[:, -1]
    return top, kth


def approximate_neighbours(
    *, index: AnnIndex, queries: NDArray[np.int64], search_k: int, passes: int = 1
) -> tuple[list[list[int]], float]:
    """Annoy top-K for each query (the query itself dropped) and the seconds one pass over the
    queries spends in Annoy: the median of `passes` timed passes (a pass the machine's other
    work happened to slow down does not set the figure)."""
    get_nns = index.index.get_nns_by_item
    qs = queries.tolist()
    times: list[float] = []
    for _ in range(max(1, passes)):
        raw: list[list[int]] = []
        started = time.perf_counter()
        for slot in qs:
            raw.append(get_nns(slot, K + 1, search_k=search_k))
        times.append(time.perf_counter() - started)
    results = [[s for s in found if s != slot][:K] for slot, found in zip(qs, raw, strict=True)]
    return results, float(np.median(times))


def recall_at_k(
    *,
    unit: NDArray[np.float32],
    queries: NDArray[np.int64],
    approx: list[list[int]],
    kth: NDArray[np.float32],
    metric: str = "ties",
) -> float:
    """Mean fraction of the K exact neighbours found. `ties`: an approximate neighbour is a hit
    when its cosine to the query is at least the K-th exact one (identical vectors are common);
    `ann-benchmarks`: `indexes.ann_tune.hits`, what the build tunes with."""
    n_hits = 0
    for i, (q, found) in enumerate(zip(queries.tolist(), approx, strict=True)):
        if found:
            sims = unit[found] @ unit[q]
            hit = sims >= kth[i] - TIE_EPS if metric == "ties" else hits(sims, float(kth[i]))
            n_hits += int(hit.sum())
    return n_hits / (K * len(queries))


def id_recall_at_k(*, top: NDArray[np.int64], approx: list[list[int]]) -> float:
    """Plain recall: overlap of the returned slots with one exact top-K (ties broken arbitrarily)."""
    hits = sum(len(set(found) & set(row)) for row, found in zip(top.tolist(), approx, strict=True))
    return hits / (K * len(top))


def measure_index(
    *,
    size: int,
    index: AnnIndex,
    n_queries: int,
    search_ks: Sequence[int],
    seed: int,
    passes: int = PASSES,
) -> list[Point]:
    log(f"bench: {index.model}.{index.entity}: reading {index.n_items} vectors")
    unit = unit_vectors(index)
    # not the build's tuning sample (`ann_tune.tune_search_k` draws from default_rng(seed)):
    # the chosen search_k is checked on queries it was not chosen on
    rng = np.random.default_rng([seed, QUERY_STREAM])
    queries = rng.choice(index.n_items, size=min(n_queries, index.n_items), replace=False)
    queries = queries.astype(np.int64)
    log(f"bench: {index.model}.{index.entity}: brute force over {len(queries)} queries")
    top, kth = exact_neighbours(unit=unit, queries=queries)
    emit(size=size, model=index.model, n_items=index.n_items)
    emit(size=size, model=index.model, n_queries=len(queries))
    approximate_neighbours(index=index, queries=queries, search_k=max(search_ks))  # warm the mmap
    points = []
    for search_k in search_ks:
        approx, seconds = approximate_neighbours(
            index=index, queries=queries, search_k=search_k, passes=passes
        )
        point = Point(
            model=index.model,
            search_k=search_k,
            recall=recall_at_k(unit=unit, queries=queries, approx=approx, kth=kth),
            ab_recall=recall_at_k(
                unit=unit, queries=queries, approx=approx, kth=kth, metric="ann-benchmarks"
            ),
            ms_per_query=1000.0 * seconds / len(queries),
        )
        ids = id_recall_at_k(top=top, approx=approx)
        emit(size=size, model=index.model, search_k=search_k, **{"recall@10": point.recall})
        emit(size=size, model=index.model, search_k=search_k, **{"ab_recall@10": point.ab_recall})
        emit(size=size, model=index.model, search_k=search_k, **{"id_recall@10": ids})
        emit(size=size, model=index.model, search_k=search_k, ms_per_query=point.ms_per_query)
        points.append(point)
    return points


def _recall(p: Point, metric: str) -> float:
    return p.ab_recall if metric == "ann-benchmarks" else p.recall


def smallest_passing(points: Sequence[Point], metric: str = "ties") -> Point | None:
    passing = [p for p in points if _recall(p, metric) >= RECALL_TARGET]
    return min(passing, key=lambda p: p.search_k) if passing else None


def _passes(points: Sequence[Point], search_k: int, metric: str) -> bool:
    return any(p.search_k == search_k and _recall(p, metric) >= RECALL_TARGET for p in points)


def measure_bundle(
    *, size: int, path: Path, n_queries: int, search_ks: Sequence[int], seed: int
) -> None:
    """Recall and latency of every track index of the bundle at `path`, and the ANN checks."""
    emit(size=size, cpus=os.cpu_count())
    emit(size=size, loadavg_1m=os.getloadavg()[0])  # other load on the machine skews timings
    points: dict[str, list[Point]] = {}
    chosen: dict[str, int] = {}  # the search_k each index's manifest entry gives the service
    with open_bundle(path, verify_checksums=False) as bundle:
        for (model, entity), index in bundle.indexes.items():
            if entity == "tracks":
                chosen[model] = index.search_k
                sweep = sorted({*search_ks, index.search_k} - {-1})
                points[model] = measure_index(
                    size=size, index=index, n_queries=n_queries, search_ks=sweep, seed=seed
                )
    for model, pts in points.items():  # what the service will do: the bundle's own search_k
        at = next((p for p in pts if p.search_k == chosen[model]), None)
        if at is None:  # search_k -1 (a tiny index: Annoy's default, exact)
            continue
        emit(
            size=size,
            check="ann_chosen_search_k",
            model=model,
            search_k=at.search_k,
            **{"ab_recall@10": at.ab_recall, "recall@10": at.recall},
            ms_per_query=at.ms_per_query,
            ok=at.ab_recall >= RECALL_TARGET and at.ms_per_query <= MS_TARGET,
        )
    for metric in ("ties", "ann-benchmarks"):
        for model, pts in points.items():
            best = smallest_passing(pts, metric)
            if best is None:
                emit(
                    size=size, check="ann_recall_ge_0.95", metric=metric, model=model,
                    search_k="none", ok=False,
                )  # fmt: skip
                continue
            emit(
                size=size,
                check="ann_recall_ge_0.95",
                metric=metric,
                model=model,
                search_k=best.search_k,
                **{"recall@10": _recall(best, metric)},
                ms_per_query=best.ms_per_query,
                ok=best.ms_per_query <= MS_TARGET,
            )
        # the one search_k for all track indexes: the smallest at which every model passes
        common = [k for k in search_ks if all(_passes(pts, k, metric) for pts in points.values())]
        if not common or not points:
            emit(size=size, check="ann_all_models", metric=metric, search_k="none", ok=False)
        else:
            k = min(common)
            worst = max(p.ms_per_query for pts in points.values() for p in pts if p.search_k == k)
            emit(
                size=size,
                check="ann_all_models",
                metric=metric,
                search_k=k,
                max_ms_per_query=worst,
                ok=worst <= MS_TARGET,
            )


def bench_size(
    *,
    size: int,
    config: BuildConfig,
    n_queries: int,
    search_ks: Sequence[int],
    out: Path,
    keep: bool,
    seed: int,
) -> None:
    workdir = Path(tempfile.mkdtemp(prefix=f"bundle-{size}-", dir=out))
    try:
        started = time.perf_counter()
        data = generate_synthetic(n_tracks=size, seed=seed)
        generate = time.perf_counter() - started
        log(f"bench: generated {data.name} in {generate:.1f}s")
        result = build_bundle(data, out=workdir, config=config)
        del data
        gc.collect()
        emit(size=size, n_trees=config.n_trees)
        emit(size=size, stage="generate", seconds=generate)
        for name, seconds in result.timings.items():
            if name != "total":
                emit(size=size, stage=stage_key(name), seconds=seconds)
        build_total = result.timings["total"]
        emit(size=size, stage="build_total", seconds=build_total)
        emit(size=size, stage="total", seconds=generate + build_total)
        emit(size=size, bundle_bytes=directory_bytes(result.path))
        for ix in result.manifest["indexes"]:  # what the build chose and measured for each index
            emit(
                size=size,
                index=f"{ix['model']}.{ix['entity']}",
                chosen_search_k=ix["search_k"],
                **{"recall@10": ix.get("recall_at_10"), "ms_per_query": ix.get("ms_per_query")},
            )

        total = generate + build_total
        emit(
            size=size,
            check=f"build_total_le_{BUILD_TARGET_SECONDS:.0f}s",
            value=total,
            ok=total <= BUILD_TARGET_SECONDS,
        )
        measure_bundle(
            size=size, path=result.path, n_queries=n_queries, search_ks=search_ks, seed=seed
        )
        if keep:
            log(f"bench: kept {result.path}")
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


def _ints(text: str) -> list[int]:
    try:
        values = [int(v.replace("_", "")) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a comma list of integers, got {text!r}"
        ) from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sizes", type=_ints, default=[100_000, 1_000_000])
    parser.add_argument("--trees", type=int, default=None, help="Annoy trees (BuildConfig default)")
    parser.add_argument(
        "--search-k", type=_ints, default=[500, 1000, 1500, 2000, 3000, 5000, 10000]
    )
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--out", type=Path, default=None, help="work directory (default: a tempdir)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the bundles")
    parser.add_argument(
        "--measure", type=Path, default=None, help="measure this bundle (a directory) only"
    )
    args = parser.parse_args(argv)
    if args.queries <= 0 or (args.trees is not None and args.trees <= 0):
        parser.error("--queries and --trees must be positive")

    config = BuildConfig(seed=args.seed)
    if args.trees is not None:
        config = BuildConfig(seed=args.seed, n_trees=args.trees)
    search_ks = sorted(set(args.search_k))
    if args.measure is not None:
        with open_bundle(args.measure, verify_checksums=False) as b:
            size = len(b.tracks)
        measure_bundle(
            size=size,
            path=args.measure,
            n_queries=args.queries,
            search_ks=search_ks,
            seed=args.seed,
        )
        return 0
    own_out = args.out is None
    out = Path(tempfile.mkdtemp(prefix="segue-bench-")) if own_out else args.out
    out.mkdir(parents=True, exist_ok=True)
    try:
        for size in args.sizes:
            bench_size(
                size=size,
                config=config,
                n_queries=args.queries,
                search_ks=search_ks,
                out=out,
                keep=args.keep,
                seed=args.seed,
            )
    finally:
        if own_out and not args.keep:
            shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
