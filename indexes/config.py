"""The settings of an offline build, in a module light enough for the CLI to import at start.

`BuildConfig` owns the defaults of `segue build` and `segue evaluate`; the CLI's options and their
help text are made from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SignalConfig:
    top_n: int = 100  # neighbours kept per item in each table
    window: int = 200  # session co-occurrence: plays of one basket at most (longer: cut)
    # recency-weighted popularity, one feature per half-life (days)
    half_lives_days: tuple[float, ...] = (7.0, 28.0, 90.0, 365.0)
    transition_half_life_days: float = 90.0


@dataclass(frozen=True)
class BuildConfig:
    dims: int = 32
    # Annoy trees per index. Fewer trees make a query cheaper at a given search_k (each query
    # descends every tree), too few make the recall vary from one build to the next; this count
    # is the compromise measured at 1M tracks, which also builds faster and takes less disk than
    # more trees (loadtest/README.md, "Trees at 1M")
    n_trees: int = 30
    # Annoy search_k stored with each index; None: the smallest that reaches `target_recall`
    # (recall@10 against brute force on a sample), measured per index at build time
    search_k: int | None = None
    target_recall: float = 0.95
    # the most search_k tuning may choose: where no search_k up to it reaches the target, the
    # index keeps this one and the manifest says `recall_target_met: false` (a bound on the
    # latency of every query; the ensemble ranks candidates from every source anyway)
    max_search_k: int = 5000
    tune_queries: int = 1000  # sampled items whose exact top 10 the search_k tuning compares to
    seed: int = 42
    # word2vec's training threads; with 1 the same data and seed give the same bundle
    threads: int = 2
    validation_fraction: float = 0.05
    min_validation_users: int = 150  # small data sets need a bigger share to label enough pairs
    max_validation_users: int = 2000
    validation_seeds_per_basket: int = 5
    max_validation_seeds: int = 5000
    # time-aware data: the ensemble weights are fitted on the next plays of the last
    # `validation_days` (models built on the data before them), then everything is refit
    validation_days: float = 28.0
    # the time the recency weights are taken at; None: the last play of the data
    as_of: float | None = None
    signals: SignalConfig = field(default_factory=SignalConfig)
    candidates_per_source: int = 50
    # a time-split fit learns from what was played next, the radio's objective: it ranks the
    # candidates a radio list is made from (SEGUE_RADIO_CANDIDATES_PER_SOURCE)
    radio_candidates_per_source: int = 250
    keep: int = 3  # published versions kept in the output directory
    # A/B variants of the radio, copied into the manifest: {name: {"share": N,
    # "weights": {"tracks": {feature: weight}}}}; none: every user gets the fitted weights
    variants: dict[str, Any] = field(default_factory=dict)
