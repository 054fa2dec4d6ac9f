from __future__ import annotations

import numpy as np
import pytest

from indexes.bundle import open_bundle
from indexes.datasets.synthetic import generate_synthetic
from indexes.ensemble import COOC, ENSEMBLE, POPULARITY, Scorer
from indexes.evaluate import EvalConfig, evaluate, format_table
from indexes.pipeline import BuildResult
from tests.conftest import TINY


def test_scorer_sources(tiny_build: BuildResult) -> None:
    with open_bundle(tiny_build.path) as b:
        scorer = Scorer(b, entity="tracks")
        row = int(b.indexes[("als", "tracks")].rows[5])
        for source in scorer.sources():
            rows, scores = scorer.top(row, 10, source=source)
            assert 0 < len(rows) <= 10, source
            assert row not in rows, source
            assert len(set(rows.tolist())) == len(rows), source
            assert (np.diff(scores) <= 1e-6).all(), source
        with pytest.raises(KeyError, match="unknown source"):
            scorer.top(row, 5, source="nope")
        with pytest.raises(IndexError):
            scorer.top(-1, 5)


def test_features_score_candidates_with_every_source(tiny_build: BuildResult) -> None:
    with open_bundle(tiny_build.path) as b:
        scorer = Scorer(b, entity="tracks")
        row = int(b.indexes[("als", "tracks")].rows[5])
        cands = scorer.candidates(row)
        x = scorer.features(row, cands)
        assert x.shape == (len(cands), len(scorer.names))
        assert {COOC, POPULARITY, "sim:als", "rank:als", "rank:cooc"} <= set(scorer.names)
        # every candidate is scored by every model that has a vector for it, whichever model
        # proposed it; a model without a vector for it (a cold track in ALS) scores 0
        for j, ann in enumerate(scorer.anns):
            has = (ann.slots[cands] >= 0) & (ann.slots[row] >= 0)
            assert (x[has, j] != 0).all() and (x[~has, j] == 0).all()
            assert has.mean() > 0.9
        # the co-occurrence feature equals the stored neighbour score
        idx, sc = b.cooc["tracks"].row(row)
        j = int(np.flatnonzero(cands == idx[0])[0])
        assert x[j, scorer.names.index(COOC)] == pytest.approx(float(sc[0]))
        # every cooc and rank feature, checked one candidate at a time against its list
        lists = scorer.candidate_lists(row)
        cooc = dict(zip(idx.tolist(), sc.tolist(), strict=True))
        sources = scorer.sources()[:-1]  # every source but the ensemble, in list order
        for i, c in enumerate(cands.tolist()):
            assert x[i, scorer.names.index(COOC)] == pytest.approx(cooc.get(c, 0.0))
            for src, ranked in zip(sources, lists, strict=True):
                at = ranked.tolist().index(c) if c in ranked.tolist() else None
                want = 0.0 if at is None else 1.0 / (1.0 + at)
                assert x[i, scorer.names.index(f"rank:{src}")] == pytest.approx(want), (src, c)


def test_learned_weights_come_from_the_manifest(tiny_build: BuildResult) -> None:
    w = tiny_build.manifest["ensemble"]["tracks"]
    assert w["fitted"] and w["positives"] > 0
    with open_bundle(tiny_build.path) as b:
        scorer = Scorer(b, entity="tracks")
        assert scorer.weights.tolist() == pytest.approx(w["weights"])


@pytest.mark.slow
def test_ensemble_beats_the_baselines_on_synthetic() -> None:
    data = generate_synthetic(n_tracks=2000, seed=11)
    results = evaluate(data, build=TINY, config=EvalConfig(k=20, max_seeds=1500))
    table = format_table(results)
    for entity in ("tracks", "artists"):
        src = results["entities"][entity]["sources"]
        ens = src[ENSEMBLE]["recall@20"]
        assert ens > src[POPULARITY]["recall@20"], table
        best_model = max(src[m]["recall@20"] for m in ("als", "word2vec", "content"))
        assert ens >= best_model, table
        if entity == "tracks":
            assert ens > src[COOC]["recall@20"], table  # 0.339 vs 0.261 when measured
        else:
            # ~200 artists: co-occurrence is near its ceiling (0.799) and the ensemble only
            # just above it (0.802-0.803 over 3 runs); word2vec trains on 2 threads, so the
            # margin moves by a few thousandths from run to run. Not below it by more than that.
            assert ens >= src[COOC]["recall@20"] - 0.01, table
    assert "sessions split by time" in results["split"]
