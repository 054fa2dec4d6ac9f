"""Learns the ensemble weights offline: logistic regression on per-source features against
held-out data: on a time-split validation window, "was this candidate played next?"; without
times, held-out co-occurrence ("is the candidate in the seed's held-out basket?").

Pairwise (RankNet-style, linear): the model learns to order a held-out positive above a negative
candidate of the same seed, from the difference of their features, which is what a ranked list
needs; a pointwise fit would mostly learn which candidates are popular overall."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from indexes.bundle import Bundle
from indexes.ensemble import Scorer, default_weights, weights_spec
from indexes.progress import Ticker, log


def fit_weights(
    bundle: Bundle,
    *,
    entity: str,
    baskets: list[NDArray[np.int32]],
    seeds_per_basket: int = 3,
    candidates_per_source: int = 50,
    max_seeds: int = 5000,
    negatives_per_positive: int = 5,
    seed: int = 0,
    ranked: bool = False,
) -> dict[str, Any]:
    """Fits weights for `entity` on held-out baskets (a seed's positives: the other items of its
    basket); returns the manifest's ensemble entry. `ranked`: each basket lists a user's items
    most played first, and its first known items are the seeds (what a related-items query
    is: an item someone listens to a lot); else seeds are drawn at random from each basket."""
    known = np.asarray(bundle.entities[entity].listeners) > 0
    if ranked:
        samples = [
            (int(q), basket)
            for basket in baskets
            for q in basket[known[basket]][:seeds_per_basket].tolist()
        ][:max_seeds]
    else:
        pairs = sample_seeds(
            baskets, known=known, per_basket=seeds_per_basket, limit=max_seeds, seed=seed
        )
        samples = [(s, baskets[b]) for b, s in pairs]
    return _fit(
        bundle,
        entity=entity,
        samples=samples,
        candidates_per_source=candidates_per_source,
        negatives_per_positive=negatives_per_positive,
        seed=seed,
        method="pairwise logistic regression on held-out co-occurrence",
    )


def fit_next_weights(
    bundle: Bundle,
    *,
    entity: str,
    prev: NDArray[np.int32],
    next: NDArray[np.int32],
    candidates_per_source: int = 50,
    max_seeds: int = 5000,
    negatives_per_positive: int = 5,
    seed: int = 0,
) -> dict[str, Any]:
    """Fits weights for `entity` on what was played next: each (prev, next) pair of a
    validation window after the bundle's data is a seed whose one positive is `next` (the
    objective a radio is judged by)."""
    known = np.asarray(bundle.entities[entity].listeners) > 0
    usable = np.flatnonzero(known[prev])
    rng = np.random.default_rng(seed)
    if len(usable) > max_seeds:
        usable = np.sort(rng.choice(usable, size=max_seeds, replace=False))
    return _fit(
        bundle,
        entity=entity,
        samples=[(int(prev[i]), next[i : i + 1]) for i in usable.tolist()],
        candidates_per_source=candidates_per_source,
        negatives_per_positive=negatives_per_positive,
        seed=seed,
        method="pairwise logistic regression on the next plays of a validation window",
    )


def _fit(
    bundle: Bundle,
    *,
    entity: str,
    samples: list[tuple[int, NDArray[np.int32]]],
    candidates_per_source: int,
    negatives_per_positive: int,
    seed: int,
    method: str,
) -> dict[str, Any]:
    scorer = Scorer(
        bundle,
        entity=entity,
        candidates_per_source=candidates_per_source,
        weights=default_weights(bundle.models(entity)),
    )
    rng = np.random.default_rng(seed)
    pairs = _pairs(scorer, samples, negatives_per_positive=negatives_per_positive, rng=rng)
    if not pairs.diffs:
        fallback = default_weights(scorer.models, scorer.table_names, scorer.pop_names)
        return {**fallback, "reason": "no validation seed with both a hit and a miss"}
    d = np.concatenate(pairs.diffs)
    weights = _pairwise_logistic(d, rng=rng)
    log(
        f"ensemble fit ({entity}): {len(samples)} seeds ({pairs.reached} with a positive among "
        f"their candidates), {pairs.candidates} candidates, {pairs.positives} positive, "
        f"{len(d)} pairs; "
        + ", ".join(f"{n}={w:.3g}" for n, w in zip(scorer.names, weights, strict=True))
    )
    return {
        **weights_spec(scorer.names, [float(w) for w in weights], fitted=True),
        "method": method,
        "samples": pairs.candidates,
        "positives": pairs.positives,
        "pairs": len(d),
        "seeds": len(samples),
        "seeds_reached": pairs.reached,
        "candidates_per_source": candidates_per_source,
    }


@dataclass
class _Pairs:
    """The feature differences (positive minus negative candidate of one seed) to fit on."""

    diffs: list[NDArray[np.float32]] = field(default_factory=list)
    candidates: int = 0
    positives: int = 0
    reached: int = 0  # seeds with a positive among their candidates


def _pairs(
    scorer: Scorer,
    samples: list[tuple[int, NDArray[np.int32]]],
    *,
    negatives_per_positive: int,
    rng: np.random.Generator,
) -> _Pairs:
    out = _Pairs()
    ticker = Ticker(f"ensemble fit ({scorer.entity})", total=len(samples), unit="seeds")
    for s, positives in samples:
        lists = scorer.candidate_lists(s)
        cands = scorer.candidates(s, lists)
        ticker.add()
        if not len(cands):
            continue
        x = scorer.features(s, cands, lists)
        y = np.isin(cands, positives)
        out.candidates += len(y)
        out.positives += int(y.sum())
        out.reached += bool(y.any())
        pos, neg = np.flatnonzero(y), np.flatnonzero(~y)
        if len(pos) and len(neg):
            # pairwise: a held-out positive should outrank a negative of the same seed
            p = np.repeat(pos, negatives_per_positive)
            n = rng.choice(neg, size=len(p))
            out.diffs.append(x[p] - x[n])
    return out


def _pairwise_logistic(d: NDArray[np.float32], *, rng: np.random.Generator) -> NDArray[np.float64]:
    """Weights w such that w . d > 0 for most rows d: a logistic regression without intercept on
    the standardised differences, each row's sign flipped at random so both classes are there."""
    from sklearn.linear_model import LogisticRegression

    scale = d.std(axis=0)
    scale[scale == 0] = 1.0
    signs = np.where(rng.random(len(d)) < 0.5, 1.0, -1.0).astype(np.float32)
    clf = LogisticRegression(C=1.0, max_iter=2000, fit_intercept=False)
    clf.fit(d / scale * signs[:, None], signs > 0)
    weights: NDArray[np.float64] = clf.coef_.ravel() / scale
    return weights


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
