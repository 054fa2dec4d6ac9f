"""`segue evaluate --split users`: queries, plain baselines and metrics, on hand-made inputs (the
whole command, with a build: tests/indexes/test_cli.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from indexes.evaluate import EvalConfig, _baselines, _evaluate_entity, _samples, format_table
from indexes.splits import Split
from tests.indexes.test_splits import _plays


class FakeScorer:
    """What the evaluation asks of a `Scorer`: per source, a ranked list for each query."""

    entity = "tracks"

    def __init__(self, lists: dict[str, dict[int, list[int]]], *, listeners: list[float]) -> None:
        self.lists = lists
        self.n_items = len(listeners)
        self.bundle = SimpleNamespace(entities={"tracks": SimpleNamespace(listeners=listeners)})

    def sources(self) -> list[str]:
        return list(self.lists)

    def top(self, q: int, k: int, *, source: str) -> tuple[np.ndarray, None]:
        return np.asarray(self.lists[source].get(q, [])[:k], dtype=np.int32), None


def _ranked_split(baskets: list[list[int]]) -> Split:
    ranked = [np.asarray(b, dtype=np.int32) for b in baskets]
    return Split(
        train=_plays([[1, 1]]),
        baskets={"tracks": [np.sort(b) for b in ranked]},
        description="",
        ranked={"tracks": ranked},
    )


def test_queries_are_a_held_out_users_top_known_items_against_the_others() -> None:
    scorer = FakeScorer({}, listeners=[1, 1, 0, 1, 1])
    split = _ranked_split([[2, 0, 1, 3], [4, 3]])
    config = EvalConfig(seeds_per_basket=2)
    samples = _samples(scorer, split=split, entity="tracks", config=config, seed=0)
    # 2 is unknown to the bundle: the queries are the next known ones
    got = [(q, t.tolist()) for q, t in samples]
    assert got == [(0, [2, 1, 3]), (1, [2, 0, 3]), (4, [3]), (3, [4])]
    capped = _samples(scorer, split=split, entity="tracks", config=EvalConfig(max_seeds=3), seed=0)
    assert len(capped) == 3


def test_session_baskets_give_random_known_queries() -> None:
    scorer = FakeScorer({}, listeners=[1, 1, 1, 0])
    baskets = [np.asarray([0, 1, 3], dtype=np.int32), np.asarray([2], dtype=np.int32)]
    split = Split(train=_plays([[1, 1]]), baskets={"tracks": baskets}, description="")
    samples = _samples(scorer, split=split, entity="tracks", config=EvalConfig(), seed=0)
    assert sorted(q for q, _ in samples) == [0, 1]  # 3 is unknown; a basket of one has no query
    for q, targets in samples:
        assert targets.tolist() == [r for r in (0, 1, 3) if r != q]


def test_baselines_are_the_most_listened_and_the_co_listened_items() -> None:
    # listeners: t0 3, t1 2, t2 1, t3 2; t0's listeners also played t1 twice and t3 once
    train = _plays([[2, 1, 0, 0], [1, 5, 0, 1], [1, 0, 0, 0], [0, 0, 1, 3]])
    lists = _baselines(train, entity="tracks", k=2)
    popular, counts = lists["baseline: popularity"], lists["baseline: co-occurrence counts"]
    assert popular(2).tolist() == [0, 1]  # ties by row
    assert popular(0).tolist() == [1, 3]  # never the query itself
    assert counts(0).tolist() == [1, 3]
    assert counts(2).tolist() == [3]  # only items listened to with it
    # artists: t0, t2 are by a0 and t1, t3 by a1; all four users listened to a0, three to a1
    artists = _baselines(train, entity="artists", k=1)
    assert artists["baseline: popularity"](1).tolist() == [0]
    assert artists["baseline: popularity"](0).tolist() == [1]


def test_metrics_per_source() -> None:
    scorer = FakeScorer(
        {"good": {0: [1, 2], 3: [4, 5]}, "bad": {0: [5, 5], 3: []}}, listeners=[1] * 6
    )
    samples = [(0, np.asarray([1, 2, 4], dtype=np.int32)), (3, np.asarray([4], dtype=np.int32))]
    baselines: dict[str, Any] = {"baseline: x": lambda q: np.asarray([2], dtype=np.int32)}
    out = _evaluate_entity(scorer=scorer, samples=samples, baselines=baselines, baskets=2, k=2)
    assert (out["seeds"], out["baskets"], out["catalogue"]) == (2, 2, 6)
    good = out["sources"]["good"]
    assert good["recall@2"] == pytest.approx((2 / 3 + 1) / 2)
    assert good["capped_recall@2"] == pytest.approx((2 / 2 + 1 / 1) / 2)
    assert good["hit_rate@2"] == 1.0 and good["coverage"] == pytest.approx(4 / 6)
    bad = out["sources"]["bad"]
    assert bad["recall@2"] == 0.0 and bad["hit_rate@2"] == 0.0 and bad["coverage"] == 1 / 6
    assert out["sources"]["baseline: x"]["hit_rate@2"] == 0.5
    assert list(out["sources"]) == ["good", "bad", "baseline: x"]


def test_no_queries_give_zeros() -> None:
    scorer = FakeScorer({"s": {}}, listeners=[1])
    out = _evaluate_entity(scorer=scorer, samples=[], baselines={}, baskets=0, k=5)
    assert out["sources"]["s"] == {
        "recall@5": 0.0,
        "capped_recall@5": 0.0,
        "hit_rate@5": 0.0,
        "coverage": 0.0,
    }


def test_format_table_lists_every_source_of_every_entity() -> None:
    row = {"recall@3": 0.5, "capped_recall@3": 0.75, "hit_rate@3": 1.0, "coverage": 0.25}
    results = {
        "k": 3,
        "split": "users split at random: 1 of 2 users held out",
        "entities": {
            "artists": {"seeds": 4, "baskets": 1, "catalogue": 9, "sources": {"als": row}},
        },
    }
    lines = format_table(results).splitlines()
    assert lines[0] == "split: users split at random: 1 of 2 users held out"
    assert lines[2] == "artists: 4 queries from 1 held-out baskets, catalogue 9"
    assert lines[3].split() == ["source", "recall@3", "capped@3", "hit@3", "coverage"]
    assert lines[4].split() == ["als", "0.5000", "0.7500", "1.0000", "0.2500"]
    assert lines[-1].startswith("recall@3: hits / the query's other items")
