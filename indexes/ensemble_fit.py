"""Learns the ensemble weights offline: logistic regression on per-source similarity features
against held-out co-occurrence (is the candidate in the seed's held-out basket?)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from indexes.bundle import Bundle
from indexes.ensemble import Scorer, default_weights
from indexes.progress import Ticker, log


def fit_weights(
    bundle: Bundle,
    *,
    entity: str,
    baskets: list[NDArray[np.int32]],
    seeds_per_basket: int = 3,
    candidates_per_source: int = 50,
    max_seeds: int = 5000,
    seed: int = 0,
) -> dict[str, Any]:
    """Fits weights for `entity` on held-out baskets; returns the manifest's ensemble entry."""
    from sklearn.linear_model import LogisticRegression

    scorer = Scorer(
        bundle,
        entity=entity,
        candidates_per_source=candidates_per_source,
        weights=default_weights(bundle.models(entity)),
    )
    known = np.asarray(bundle.entities[entity].listeners) > 0
    pairs = sample_seeds(
        baskets, known=known, per_basket=seeds_per_basket, limit=max_seeds, seed=seed
    )
    xs, ys = [], []
    ticker = Ticker(f"ensemble fit ({entity})", total=len(pairs), unit="seeds")
    for b, s in pairs:
        lists = scorer.candidate_lists(s)
        cands = scorer.candidates(s, lists)
        if len(cands):
            xs.append(scorer.features(s, cands, lists))
            ys.append(np.isin(cands, baskets[b]))
        ticker.add()
    fallback = default_weights(scorer.models)
    if not xs:
        return {**fallback, "reason": "no validation seeds"}
    x, y = np.concatenate(xs), np.concatenate(ys)
    if y.all() or not y.any():
        return {**fallback, "reason": "validation labels are all one class"}
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    clf = LogisticRegression(C=1.0, max_iter=2000)
    clf.fit((x - mean) / scale, y)
    w_std = clf.coef_.ravel()
    weights = w_std / scale
    bias = float(clf.intercept_[0] - np.sum(w_std * mean / scale))
    log(
        f"ensemble fit ({entity}): {len(pairs)} seeds, {len(y)} candidates, {int(y.sum())} positive; "
        + ", ".join(f"{n}={w:.3g}" for n, w in zip(scorer.names, weights, strict=True))
    )
    return {
        "features": scorer.names,
        "weights": [float(w) for w in weights],
        "bias": bias,
        "fitted": True,
        "method": "logistic regression on held-out co-occurrence",
        "samples": len(y),
        "positives": int(y.sum()),
        "seeds": len(pairs),
        "candidates_per_source": candidates_per_source,
    }


def sample_seeds(
    baskets: list[NDArray[np.int32]],
    *,
    known: NDArray[np.bool_],
    per_basket: int,
    limit: int,
    seed: int,
) -> list[tuple[int, int]]:
    """(basket, seed row) pairs: up to `per_basket` known items of each basket of 2+ items."""
    rng = np.random.default_rng(seed)
    pairs: list[tuple[int, int]] = []
    for b in rng.permutation(len(baskets)).tolist():
        basket = baskets[b]
        if len(basket) < 2:
            continue
        candidates = basket[known[basket]]
        if len(candidates) == 0:
            continue
        picks = rng.choice(candidates, size=min(per_basket, len(candidates)), replace=False)
        pairs.extend((b, int(s)) for s in picks)
        if len(pairs) >= limit:
            break
    return pairs[:limit]
