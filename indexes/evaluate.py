"""`segue evaluate`: recall and hit rate at K on a held-out split, per source, plus coverage.

The bundle is built on the training part exactly as `segue build` would (validation users for
the ensemble weights are taken from the training part), then every source answers the seeds of
the held-out baskets through the real Annoy indexes of that bundle: each vector model, the two
plain baselines (popularity, co-occurrence cosine) and the ensemble.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from indexes.bundle import open_bundle
from indexes.datasets.shape import Dataset
from indexes.ensemble import Scorer
from indexes.ensemble_fit import sample_seeds
from indexes.pipeline import BuildConfig, build_bundle
from indexes.progress import Ticker, log, stage
from indexes.splits import evaluation_split


@dataclass(frozen=True)
class EvalConfig:
    k: int = 20
    test_fraction: float = 0.2
    seeds_per_basket: int = 5
    max_seeds: int = 5000


def evaluate(data: Dataset, *, build: BuildConfig, config: EvalConfig) -> dict[str, Any]:
    timings: dict[str, float] = {}
    with stage("evaluation split", timings):
        split = evaluation_split(data, test_fraction=config.test_fraction, seed=build.seed)
        log(f"  {split.description}")
    results: dict[str, Any] = {
        "dataset": data.summary(),
        "split": split.description,
        "k": config.k,
        "entities": {},
    }
    with tempfile.TemporaryDirectory(prefix="segue-eval-") as tmp:
        built = build_bundle(split.train, out=Path(tmp), config=build, publish=False)
        results["ensemble_weights"] = built.manifest["ensemble"]
        with open_bundle(built.path, verify_checksums=False) as bundle:
            for entity in ("tracks", "artists"):
                if data.tracks_are_artists and entity == "tracks":
                    continue  # the same items twice: report them once, as artists
                with stage(f"evaluate {entity}", timings):
                    results["entities"][entity] = _evaluate_entity(
                        bundle_scorer=Scorer(
                            bundle, entity=entity, candidates_per_source=build.candidates_per_source
                        ),
                        baskets=split.baskets[entity],
                        config=config,
                        seed=build.seed,
                    )
    results["timings"] = {k: round(v, 2) for k, v in {**built.timings, **timings}.items()}
    return results


def _evaluate_entity(
    *, bundle_scorer: Scorer, baskets: list[np.ndarray], config: EvalConfig, seed: int
) -> dict[str, Any]:
    scorer = bundle_scorer
    known = np.asarray(scorer.bundle.entities[scorer.entity].listeners) > 0
    pairs = sample_seeds(
        baskets,
        known=known,
        per_basket=config.seeds_per_basket,
        limit=config.max_seeds,
        seed=seed + 1,
    )
    k = config.k
    out: dict[str, Any] = {
        "seeds": len(pairs),
        "baskets": len(baskets),
        "catalogue": scorer.n_items,
        "sources": {},
    }
    for source in scorer.sources():
        recalls, hits = [], []
        seen: set[int] = set()
        ticker = Ticker(f"evaluate {scorer.entity} {source}", total=len(pairs), unit="seeds")
        for b, s in pairs:
            rows, _ = scorer.top(s, k, source=source)
            targets = baskets[b][baskets[b] != s]
            n_hit = int(np.isin(rows, targets).sum())
            recalls.append(n_hit / min(k, len(targets)))
            hits.append(n_hit > 0)
            seen.update(rows.tolist())
            ticker.add()
        out["sources"][source] = {
            f"recall@{k}": float(np.mean(recalls)) if recalls else 0.0,
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
            f"{entity}: {r['seeds']} seeds from {r['baskets']} held-out baskets, catalogue {r['catalogue']}"
        )
        lines.append(
            f"  {'source':<12} {'recall@' + str(k):>10} {'hit@' + str(k):>10} {'coverage':>10}"
        )
        for source, m in r["sources"].items():
            lines.append(
                f"  {source:<12} {m[f'recall@{k}']:>10.4f} {m[f'hit_rate@{k}']:>10.4f} {m['coverage']:>10.4f}"
            )
    return "\n".join(lines)
