"""`segue evaluate --split time` on the synthetic catalogue, whose popularity rises and decays,
and its pieces on hand-made plays."""

from __future__ import annotations

import math
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from indexes.datasets.synthetic import generate_synthetic
from indexes.evaluate_time import (
    RADIO,
    TimeEvalConfig,
    _list_hit_rates,
    _test_pairs,
    evaluate_time,
    format_time_table,
    plain_baselines,
    wilson,
)
from indexes.signals import SignalConfig
from indexes.splits import NextTrackPairs
from tests.conftest import TINY
from tests.indexes.test_signals import _dataset

CONFIG = TimeEvalConfig(test_weeks=2, max_pairs=1500)


@pytest.fixture(scope="module")
def with_time() -> dict[str, Any]:
    return evaluate_time(
        generate_synthetic(n_tracks=2000, seed=11, time_dynamics=True), build=TINY, config=CONFIG
    )


@pytest.fixture(scope="module")
def without_time() -> dict[str, Any]:
    return evaluate_time(
        generate_synthetic(n_tracks=2000, seed=11, time_dynamics=False), build=TINY, config=CONFIG
    )


def _no_recency(data_with_time: bool) -> dict[str, Any]:
    build = replace(TINY, signals=SignalConfig(half_lives_days=()))
    data = generate_synthetic(n_tracks=2000, seed=11, time_dynamics=data_with_time)
    return evaluate_time(data, build=build, config=CONFIG)


def _radio_gain(full: dict[str, Any], ablated: dict[str, Any]) -> list[float]:
    return [full["lists"][RADIO][f"hr@{k}"] - ablated["lists"][RADIO][f"hr@{k}"] for k in CONFIG.ks]


@pytest.mark.slow
def test_recency_buys_hit_rate_where_popularity_moves_and_not_where_it_is_constant(
    with_time: dict[str, Any], without_time: dict[str, Any]
) -> None:
    """The same build with and without the recency-weighted popularity features: the fit turns
    them into hit rate only on the catalogue whose popularity rises and decays. (The sum of their
    weights said little: the features are correlated, so the fit trades weight between them.)"""
    moving = _radio_gain(with_time, _no_recency(True))
    constant = _radio_gain(without_time, _no_recency(False))
    # the thresholds sit between the gains measured on both catalogues (docs/quality.md,
    # "Synthetic catalogue"); one training thread makes them the same on every run
    assert all(g > 0.02 for g in moving), (moving, constant)
    assert all(g < 0.01 for g in constant), (moving, constant)


@pytest.mark.slow
def test_the_radio_list_beats_the_plain_baselines_where_time_matters(
    with_time: dict[str, Any],
) -> None:
    table = format_time_table(with_time)
    lists = with_time["lists"]
    radio = lists[RADIO]
    for k in CONFIG.ks:
        best = max(r[f"hr@{k}"] for r in lists.values() if r["kind"] == "baseline")
        assert radio[f"hr@{k}"] > best, table  # the margins: docs/quality.md
    # the recency-weighted popularity ranks what is played next better than all-time counts
    assert lists["recent_7d"]["hr@50"] > lists["baseline: popularity, all time"]["hr@50"], table


@pytest.mark.slow
def test_every_list_has_hit_rates_with_intervals(with_time: dict[str, Any]) -> None:
    t = with_time["test"]
    assert 0 < t["evaluated"] <= CONFIG.max_pairs
    assert t["pairs_with_known_previous"] <= t["pairs"]
    names = set(with_time["lists"])
    assert {RADIO, "similar", "als", "word2vec", "content", "cooc", "cooc_count", "trans",
            "trans_recent", "popularity", "recent_7d"} <= names  # fmt: skip
    assert {n for n in names if n.startswith("baseline:")} == {
        "baseline: popularity, all time",
        "baseline: most played, last 28 days",
        "baseline: co-occurrence counts",
        "baseline: transitions",
    }
    for row in with_time["lists"].values():
        for k in CONFIG.ks:
            lo, hi = row[f"hr@{k}_ci95"]
            assert lo <= row[f"hr@{k}"] <= hi
        hr = [row[f"hr@{k}"] for k in CONFIG.ks]
        assert hr == sorted(hr)  # a longer list finds at least as much
    assert with_time["time"]["as_of"] < with_time["split"]["test"].replace(" ", "T")[:19] + "Z"


def test_a_time_split_needs_times_and_a_date_inside_the_data() -> None:
    data = generate_synthetic(n_tracks=300, seed=3)
    untimed = replace(data, sequences=replace(data.sequences, times=None))
    with pytest.raises(ValueError, match="needs ordered sequences with a time"):
        evaluate_time(untimed, build=TINY, config=CONFIG)
    with pytest.raises(ValueError, match="outside the data"):
        evaluate_time(data, build=TINY, config=TimeEvalConfig(test_from=0.0))


def test_wilson_interval() -> None:
    assert wilson(0, 0) == (0.0, 0.0)
    lo, hi = wilson(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-3) and hi == pytest.approx(0.5962, abs=1e-3)
    lo, hi = wilson(0, 20)
    assert lo == 0.0 and 0.1 < hi < 0.2
    assert not math.isnan(wilson(20, 20)[0]) and wilson(20, 20)[1] == 1.0
    assert np.isfinite(wilson(1, 10**6)).all()


def test_the_time_evaluation_builds_radio_lists_as_the_service_does() -> None:
    from indexes.pipeline import BuildConfig
    from service.settings import Settings

    s, e = Settings(), TimeEvalConfig()
    assert (e.radio_size, e.radio_artist_cap, e.radio_per_source, e.similar_artist_cap) == (
        s.radio_size,
        s.radio_artist_cap,
        s.radio_candidates_per_source,
        s.artist_cap,
    )
    assert BuildConfig().radio_candidates_per_source == s.radio_candidates_per_source
    assert BuildConfig().candidates_per_source == s.candidates_per_source


# --- the pieces, on hand-made plays (no build) ------------------------------------------------


def test_plain_baselines_from_the_training_plays() -> None:
    day = 86400.0
    sessions = [[0, 1, 2], [0, 1, 3], [1, 0], [4, 4]]
    starts = [0.0, 10 * day, 20 * day, 30 * day]
    train = _dataset(
        sessions,
        [[t + 60.0 * i for i in range(len(s))] for s, t in zip(sessions, starts, strict=True)],
    )
    seeds = np.asarray([0, 1, 4])
    config = TimeEvalConfig(recent_days=15)
    lists = plain_baselines(train, seeds=seeds, depth=3, config=config, as_of=31 * day)
    assert list(lists) == [
        "baseline: popularity, all time",
        "baseline: most played, last 15 days",
        "baseline: co-occurrence counts",
        "baseline: transitions",
    ]

    def rows(name: str) -> list[list[int]]:
        return [lists[name](i).tolist() for i in range(len(seeds))]

    # plays: t0 3, t1 3, t4 2, t2 1, t3 1; the list holds `depth` tracks, less the seed
    assert rows("baseline: popularity, all time") == [[1, 4], [0, 4], [0, 1]]
    # since day 16: t4 twice, t0 and t1 once (ties by row)
    assert rows("baseline: most played, last 15 days") == [[4, 1], [4, 0], [0, 1]]
    # sessions that hold the seed; t4's only session holds nothing else
    assert rows("baseline: co-occurrence counts") == [[1, 2, 3], [0, 2, 3], []]
    # what followed the seed: 0 -> 1 twice; 1 -> 2, 3 and 0 once; 4 -> 4 is the seed itself
    assert rows("baseline: transitions") == [[1], [0, 2, 3], []]


def test_hit_rates_count_where_the_next_track_stands_in_the_seeds_list() -> None:
    per_seed = [np.asarray([5, 2, 7], dtype=np.int32), np.asarray([1], dtype=np.int32)]
    test = NextTrackPairs(
        prev=np.asarray([10, 10, 11, 10], dtype=np.int32),
        next=np.asarray([2, 7, 3, -1], dtype=np.int32),  # -1: new in the test window
        time=np.zeros(4),
    )
    seed_of = np.asarray([0, 0, 1, 0])
    row = _list_hit_rates(per_seed, test=test, seed_of=seed_of, ks=(1, 2, 3), n_items=8)
    assert [row[f"hr@{k}"] for k in (1, 2, 3)] == [0.0, 0.25, 0.5]
    assert row["hr@3_ci95"] == list(wilson(2, 4))
    assert row["coverage"] == 4 / 8
    empty = NextTrackPairs(prev=test.prev[:0], next=test.next[:0], time=test.time[:0])
    assert (
        _list_hit_rates(per_seed, test=empty, seed_of=seed_of[:0], ks=(1,), n_items=8)["hr@1"]
        == 0.0
    )


def test_test_pairs_need_a_previous_track_the_bundle_knows() -> None:
    scorer = SimpleNamespace(bundle=SimpleNamespace(tracks=SimpleNamespace(listeners=[2, 0, 1])))
    pairs = NextTrackPairs(
        prev=np.asarray([0, 1, -1, 2, 0], dtype=np.int32),
        next=np.asarray([1, 2, 0, -1, 2], dtype=np.int32),
        time=np.arange(5.0),
    )
    test, counts = _test_pairs(scorer, pairs=pairs, config=TimeEvalConfig())
    assert test.prev.tolist() == [0, 2, 0] and test.next.tolist() == [1, -1, 2]
    assert counts == {
        "pairs": 5,
        "pairs_with_known_previous": 3,
        "evaluated": 3,
        "next_unknown_share": 1 / 3,
    }
    sample, counts = _test_pairs(scorer, pairs=pairs, config=TimeEvalConfig(max_pairs=2))
    assert len(sample) == 2 and counts["evaluated"] == 2
    assert set(sample.time.tolist()) <= {0.0, 3.0, 4.0}  # in time order, a subset of the three
    assert sample.time.tolist() == sorted(sample.time.tolist())
