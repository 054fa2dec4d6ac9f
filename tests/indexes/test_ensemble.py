from __future__ import annotations

import numpy as np
import pytest

from indexes.bundle import open_bundle
from indexes.datasets.synthetic import generate_synthetic
from indexes.ensemble import (
    COOC,
    ENSEMBLE,
    POPULARITY,
    RankedBatch,
    Scorer,
    capped_positions,
    sorted_unique,
)
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


@pytest.mark.parametrize(("entity", "k", "per_source"), [("tracks", 10, None), ("tracks", 10**6, 120),
                                                       ("artists", 20, None)])  # fmt: skip
def test_rank_many_ranks_each_row_as_rank_does(
    tiny_build: BuildResult, entity: str, k: int, per_source: int | None
) -> None:
    with open_bundle(tiny_build.path) as b:
        scorer = Scorer(b, entity=entity)
        rows = [0, 5, scorer.n_items - 1, 5, *range(20, 60)]
        batch = scorer.rank_many(rows, k, per_source=per_source)
        assert len(batch) == len(rows)
        for i, row in enumerate(rows):
            want_rows, want_scores = scorer.rank(row, k, per_source=per_source)
            got_rows, got_scores = batch.one(i)
            assert got_rows.tolist() == want_rows.tolist()
            assert got_scores.tolist() == want_scores.tolist()  # the same floats
        assert len(scorer.rank_many([], k)) == 0
        with pytest.raises(IndexError):
            scorer.rank_many([1, scorer.n_items], k)


def test_a_batch_is_capped_per_artist_within_each_list() -> None:
    artist = np.array([0, 0, 1, 1, 2], dtype=np.int32)
    batch = RankedBatch(
        rows=np.array([0, 1, 2, 3, 4, 1, 0, 4], dtype=np.int32),
        scores=np.arange(8, dtype=np.float32),
        bounds=np.array([0, 5, 5, 8]),
    )
    capped = batch.capped(artist=artist, cap=1, limit=2)
    assert [capped.one(i)[0].tolist() for i in range(3)] == [[0, 2], [], [1, 4]]
    assert capped.one(2)[1].tolist() == [5.0, 7.0]
    lists = np.array([0, 0, 1, 1, 1])
    assert capped_positions(np.array([3, 3, 3, 4, 3]), cap=1, lists=lists).tolist() == [0, 2, 3]


def test_sorted_unique_is_np_unique() -> None:
    values = np.random.default_rng(1).integers(0, 50, 300)
    assert sorted_unique(values).tolist() == np.unique(values).tolist()
    assert sorted_unique(values[:1]).tolist() == values[:1].tolist()
    assert sorted_unique(values[:0]).tolist() == []


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
