"""`segue evaluate --split users`: recall and hit rate at K on held-out users, per source.

Users are split at random; the bundle is built on the others exactly as `segue build` would
(which holds out validation users of its own for the ensemble weights, then refits on all the
users it was given). Each held-out user's top items (by plays; 5 by default) are the queries,
the user's other items the targets. Every source answers through the real Annoy indexes of that
bundle: each vector model, each signal table and popularity, the ensemble (what
`/v1/artists/{id}/related` and `/similar` serve), and the plain baselines computed from the
training data alone: the most listened items and plain co-occurrence counts (the items most
often listened to by the query's listeners). For time-stamped plays see `indexes.evaluate_time`.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import sparse

from indexes.bundle import open_bundle
from indexes.datasets.shape import Dataset
from indexes.ensemble import Scorer
from indexes.ensemble_fit import sample_seeds
from indexes.pipeline import BuildConfig, Engine, build_bundle
from indexes.progress import Ticker, log, stage
from indexes.splits import Split, evaluation_split


@dataclass(frozen=True)
class EvalConfig:
    k: int = 20
    test_fraction: float = 0.2
    seeds_per_basket: int = 5  # user split: a held-out user's top items are the queries
    max_seeds: int = 5000
    by_users: bool = False  # always split users (`--split users`), even with session times


def evaluate(
    data: Dataset, *, build: BuildConfig, config: EvalConfig, engine: Engine | None = None
) -> dict[str, Any]:
    timings: dict[str, float] = {}
    with stage("evaluation split", timings):
        split = evaluation_split(
            data, test_fraction=config.test_fraction, seed=build.seed, by_users=config.by_users
        )
        log(f"  {split.description}")
    results: dict[str, Any] = {
        "dataset": data.summary(),
        "split": split.description,
        "k": config.k,
        "entities": {},
    }
    with tempfile.TemporaryDirectory(prefix="segue-eval-") as tmp:
        built = build_bundle(split.train, out=Path(tmp), config=build, publish=False, engine=engine)
        results["ensemble_weights"] = built.manifest["ensemble"]
        with open_bundle(built.path, verify_checksums=False) as bundle:
            for entity in ("tracks", "artists"):
                if data.tracks_are_artists and entity == "tracks":
                    continue  # the same items twice: report them once, as artists
                with stage(f"evaluate {entity}", timings):
                    scorer = Scorer(
                        bundle, entity=entity, candidates_per_source=build.candidates_per_source
                    )
                    samples = _samples(
                        scorer, split=split, entity=entity, config=config, seed=build.seed
                    )
                    results["entities"][entity] = _evaluate_entity(
                        scorer=scorer,
                        samples=samples,
                        baselines=_baselines(split.train, entity=entity, k=config.k),
                        baskets=len(split.baskets[entity]),
                        k=config.k,
                    )
    results["timings"] = {k: round(v, 2) for k, v in {**built.timings, **timings}.items()}
    return results


def _samples(
    scorer: Scorer, *, split: Split, entity: str, config: EvalConfig, seed: int
) -> list[tuple[int, NDArray[np.int32]]]:
    """(query, targets): a held-out user's top items (by plays) that the bundle knows, each
    against the user's other items; for session baskets, random items of the basket."""
    known = np.asarray(scorer.bundle.entities[entity].listeners) > 0
    out: list[tuple[int, NDArray[np.int32]]] = []
    if split.ranked is not None:
        for basket in split.ranked[entity]:
            for q in basket[known[basket]][: config.seeds_per_basket].tolist():
                out.append((q, basket[basket != q]))
                if len(out) >= config.max_seeds:
                    return out
        return out
    baskets = split.baskets[entity]
    pairs = sample_seeds(
        baskets, known=known, per_basket=config.seeds_per_basket, limit=config.max_seeds,
        seed=seed + 1,
    )  # fmt: skip
    return [(s, baskets[b][baskets[b] != s]) for b, s in pairs]


def _baselines(train: Dataset, *, entity: str, k: int) -> dict[str, Any]:
    """The plain lists a user would compare with, from the training data alone: the items
    with the most listeners, and the items most often listened to by the query's listeners."""
    m = train.interactions if entity == "tracks" else train.artist_interactions()
    x = sparse.csr_matrix(m, dtype=np.float32, copy=True)
    x.eliminate_zeros()
    x.data[:] = 1.0
    xt = sparse.csr_matrix(x.T)
    listeners = np.asarray(x.sum(axis=0)).ravel()
    by_listeners = np.lexsort((np.arange(len(listeners)), -listeners))[: k + 1]

    def popular(q: int) -> NDArray[np.int32]:
        return by_listeners[by_listeners != q][:k].astype(np.int32)

    def cooc_counts(q: int) -> NDArray[np.int32]:
        counts = np.asarray((xt[q] @ x).todense()).ravel()
        counts[q] = 0
        top = np.lexsort((np.arange(len(counts)), -counts))[:k]
        return top[counts[top] > 0].astype(np.int32)

    return {"baseline: popularity": popular, "baseline: co-occurrence counts": cooc_counts}


def _evaluate_entity(
    *,
    scorer: Scorer,
    samples: list[tuple[int, NDArray[np.int32]]],
    baselines: dict[str, Any],
    baskets: int,
    k: int,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "seeds": len(samples),
        "baskets": baskets,
        "catalogue": scorer.n_items,
        "sources": {},
    }
    lists: dict[str, Any] = {
        s: (lambda q, s=s: scorer.top(q, k, source=s)[0]) for s in scorer.sources()
    }
    lists.update(baselines)
    for source, top in lists.items():
        recalls, capped, hits = [], [], []
        seen: set[int] = set()
        ticker = Ticker(f"evaluate {scorer.entity} {source}", total=len(samples), unit="seeds")
        for q, targets in samples:
            rows = top(q)
            n_hit = int(np.isin(rows, targets).sum())
            recalls.append(n_hit / len(targets))
            capped.append(n_hit / min(k, len(targets)))
            hits.append(n_hit > 0)
            seen.update(rows.tolist())
            ticker.add()
        out["sources"][source] = {
            f"recall@{k}": float(np.mean(recalls)) if recalls else 0.0,
            f"capped_recall@{k}": float(np.mean(capped)) if capped else 0.0,
            f"hit_rate@{k}": float(np.mean(hits)) if hits else 0.0,
            "coverage": len(seen) / max(1, scorer.n_items),
        }
    return out


def format_table(results: dict[str, Any]) -> str:
    k = results["k"]
    lines = [f"split: {results['split']}"]
    for entity, r in results["entities"].items():
        lines.append("")
        lines.append(
            f"{entity}: {r['seeds']} queries from {r['baskets']} held-out baskets, catalogue {r['catalogue']}"
        )
        lines.append(
            f"  {'source':<32} {'recall@' + str(k):>10} {'capped@' + str(k):>10} "
            f"{'hit@' + str(k):>10} {'coverage':>10}"
        )
        for source, m in r["sources"].items():
            lines.append(
                f"  {source:<32} {m[f'recall@{k}']:>10.4f} {m[f'capped_recall@{k}']:>10.4f} "
                f"{m[f'hit_rate@{k}']:>10.4f} {m['coverage']:>10.4f}"
            )
    lines.append("")
    lines.append(
        f"recall@{k}: hits / the query's other items; capped@{k}: hits / min({k}, other items)"
    )
    return "\n".join(lines)
