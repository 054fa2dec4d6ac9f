"""`segue evaluate --split time`: next-track hit rate of the radio list on a time split.

Train on everything played before the test date (the bundle chooses its own ensemble weights on a
validation window just before it, as `segue build` does), then for every test play whose previous
track is in the catalogue ask: is the next track among the first K of the list? The lists:

- `radio`: the radio neighbours a station is built from (the ensemble with the service's radio
  settings: 250 tracks, the radio artist cap, candidates per source);
- `similar`: the ensemble with the similar-tracks artist cap;
- every single source of the bundle (each model, each neighbour table, each popularity);
- the plain baselines, computed from the training plays without the bundle: all-time
  popularity, the most played of the last 28 days, co-occurrence counts (sessions that hold
  both tracks) and transitions (how often the track followed the seed).

Hit rates come with 95 % Wilson intervals. Test plays whose previous track was never played in
training are counted and left out (no list can be asked for them); a next track that is new
in the test window counts as a miss for every list.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import sparse

from indexes.bundle import open_bundle
from indexes.datasets.shape import Dataset, following
from indexes.ensemble import ENSEMBLE, Scorer, capped_positions, top_rows
from indexes.pipeline import BuildConfig, Engine, build_bundle
from indexes.progress import Ticker, log, stage
from indexes.signals import DAY, session_baskets
from indexes.splits import (
    NextTrackPairs,
    known_at,
    map_pairs,
    next_track_pairs,
    time_splittable,
)

RADIO, SIMILAR = "radio", "similar"


@dataclass(frozen=True)
class TimeEvalConfig:
    test_from: float | None = None  # unix seconds; None: the last `test_weeks` of the data
    test_weeks: float = 8.0
    ks: tuple[int, ...] = (10, 50, 250)
    # the radio list as the service builds it (SEGUE_RADIO_SIZE, SEGUE_RADIO_ARTIST_CAP,
    # SEGUE_RADIO_CANDIDATES_PER_SOURCE) and the similar list's artist cap (SEGUE_ARTIST_CAP)
    radio_size: int = 250
    radio_artist_cap: int = 10
    radio_per_source: int = 250
    similar_artist_cap: int = 2
    recent_days: float = 28.0  # the "most played lately" baseline
    max_pairs: int | None = None  # a sample of the test pairs (None: all of them)
    seed: int = 42


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion."""
    if n == 0:
        return 0.0, 0.0
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def evaluate_time(
    data: Dataset, *, build: BuildConfig, config: TimeEvalConfig, engine: Engine | None = None
) -> dict[str, Any]:
    first, test_from, last = _test_window(data, config=config)
    timings: dict[str, float] = {}
    with stage("time split", timings):
        # the catalogue as of the test date: a track first played later is in no list
        train, track_row = known_at(data, test_from)
        pairs = map_pairs(next_track_pairs(data, start=test_from, end=math.inf), track_row)
        log(
            f"  training on the {train.sequences.n_items} plays before {_iso(test_from)}, "
            f"testing on {len(pairs)} next plays after it"
        )
    results: dict[str, Any] = {
        "dataset": data.summary(),
        "split": {
            "kind": "time",
            "train": f"{_iso(first)} .. {_iso(test_from)}",
            "test": f"{_iso(test_from)} .. {_iso(last)}",
            "validation_days": build.validation_days,
        },
        "ks": list(config.ks),
    }
    with tempfile.TemporaryDirectory(prefix="segue-eval-") as tmp:
        built = build_bundle(train, out=Path(tmp), config=build, publish=False, engine=engine)
        results["split"]["validation"] = built.manifest["ensemble"]["tracks"].get("validation")
        results["ensemble_weights"] = built.manifest["ensemble"]
        results["time"] = built.manifest.get("time")
        with open_bundle(built.path, verify_checksums=False) as bundle:
            scorer = Scorer(
                bundle, entity="tracks", candidates_per_source=build.candidates_per_source
            )
            test, results["test"] = _test_pairs(scorer, pairs=pairs, config=config)
            with stage("evaluate lists", timings):
                results["lists"] = _hit_rates(
                    scorer=scorer, train=train, test=test, config=config, as_of=test_from
                )
    results["timings"] = {k: round(v, 2) for k, v in {**built.timings, **timings}.items()}
    return results


def _test_window(data: Dataset, *, config: TimeEvalConfig) -> tuple[float, float, float]:
    """(first play, test date, last play); raises `ValueError` when the data cannot be split
    by time or the test date is outside it."""
    if not time_splittable(data):
        raise ValueError(
            f"{data.name}: a time split needs ordered sequences with a time for every play "
            "(sessions CSV with a timestamp column, a plays-at CSV, or synthetic data)"
        )
    span = data.sequences.time_span()
    assert span is not None
    first, last = span
    test_from = config.test_from
    if test_from is None:
        test_from = last - config.test_weeks * 7 * DAY
    if not first < test_from <= last:
        raise ValueError(
            f"--test-from {_iso(test_from)} is outside the data ({_iso(first)} .. {_iso(last)})"
        )
    return first, test_from, last


def _test_pairs(
    scorer: Scorer, *, pairs: NextTrackPairs, config: TimeEvalConfig
) -> tuple[NextTrackPairs, dict[str, Any]]:
    """The pairs whose previous track the bundle knows (a sample of `config.max_pairs` of them
    if set), and how many there were."""
    known = np.asarray(scorer.bundle.tracks.listeners) > 0
    usable = pairs.prev >= 0
    usable[usable] = known[pairs.prev[usable]]
    test = pairs.take(usable)
    if config.max_pairs is not None and len(test) > config.max_pairs:
        pick = np.random.default_rng(config.seed).choice(
            len(test), size=config.max_pairs, replace=False
        )
        test = test.take(np.isin(np.arange(len(test)), pick))
    counts = {
        "pairs": len(pairs),
        "pairs_with_known_previous": int(usable.sum()),
        "evaluated": len(test),
        "next_unknown_share": float(np.mean(test.next < 0)) if len(test) else 0.0,
    }
    return test, counts


def _hit_rates(
    *,
    scorer: Scorer,
    train: Dataset,
    test: NextTrackPairs,
    config: TimeEvalConfig,
    as_of: float,
) -> dict[str, Any]:
    """Per list: its hit rate at each K over the test pairs (with Wilson intervals) and the
    share of the catalogue it lists for some seed."""
    seeds, seed_of = np.unique(test.prev, return_inverse=True)
    baselines = plain_baselines(
        train, seeds=seeds, depth=max(config.ks), config=config, as_of=as_of
    )
    lists = _lists(scorer, seeds=seeds, baselines=baselines, config=config)
    out: dict[str, Any] = {}
    for name, per_seed in lists.items():
        rates = _list_hit_rates(
            per_seed, test=test, seed_of=seed_of, ks=config.ks, n_items=scorer.n_items
        )
        out[name] = {"kind": _kind(name), **rates}
    return out


def _lists(
    scorer: Scorer,
    *,
    seeds: NDArray[np.integer[Any]],
    baselines: dict[str, Any],
    config: TimeEvalConfig,
) -> dict[str, list[NDArray[np.int32]]]:
    """Every list's first `max(config.ks)` rows for each seed: the radio and similar lists, each
    single source and the plain baselines."""
    depth = max(config.ks)
    artist = np.asarray(scorer.bundle.tracks.artist)
    lists: dict[str, list[NDArray[np.int32]]] = {}

    def add(name: str, rows: NDArray[np.int32]) -> None:
        lists.setdefault(name, []).append(np.asarray(rows[:depth], dtype=np.int32))

    ticker = Ticker("evaluate seeds", total=len(seeds), unit="seeds")
    for i, s in enumerate(seeds.tolist()):
        ranked, _ = scorer.top(
            s, scorer.n_items, source=ENSEMBLE, per_source=config.radio_per_source
        )
        radio = ranked[capped_positions(artist[ranked], cap=config.radio_artist_cap)]
        add(RADIO, radio[: config.radio_size])
        ranked, _ = scorer.top(s, scorer.n_items, source=ENSEMBLE)
        add(SIMILAR, ranked[capped_positions(artist[ranked], cap=config.similar_artist_cap)])
        for source in scorer.sources():
            if source != ENSEMBLE:
                add(source, scorer.top(s, depth, source=source)[0])
        for name, rows_of in baselines.items():
            add(name, rows_of(i))
        ticker.add()
    return lists


def _list_hit_rates(
    per_seed: list[NDArray[np.int32]],
    *,
    test: NextTrackPairs,
    seed_of: NDArray[np.intp],
    ks: tuple[int, ...],
    n_items: int,
) -> dict[str, Any]:
    """One list's ``hr@K`` and ``hr@K_ci95`` for each K, and its coverage."""
    hits = {k: 0 for k in ks}
    for j, nxt in enumerate(test.next.tolist()):
        ranked = per_seed[seed_of[j]]
        where = np.flatnonzero(ranked == nxt)
        if len(where):
            for k in ks:
                hits[k] += int(where[0] < k)
    seen: set[int] = set()
    for rows in per_seed:
        seen.update(rows.tolist())
    n = len(test)
    row: dict[str, Any] = {}
    for k in ks:
        lo, hi = wilson(hits[k], n)
        row[f"hr@{k}"] = hits[k] / n if n else 0.0
        row[f"hr@{k}_ci95"] = [lo, hi]
    row["coverage"] = len(seen) / max(1, n_items)
    return row


def _kind(name: str) -> str:
    if name in (RADIO, SIMILAR):
        return "ensemble"
    if name.startswith("baseline:"):
        return "baseline"
    return "source"


def plain_baselines(
    train: Dataset,
    *,
    seeds: NDArray[np.integer[Any]],
    depth: int,
    config: TimeEvalConfig,
    as_of: float,
) -> dict[str, Any]:
    """The plain lists a user would compare with, from the training plays alone: for the i-th
    seed, ``lists[name](i)`` is the list's rows."""
    seqs = train.sequences
    assert seqs.times is not None
    n = train.items.n_tracks
    all_time = np.bincount(seqs.items, minlength=n).astype(np.float64)
    recent = np.bincount(
        seqs.items[seqs.times >= as_of - config.recent_days * DAY], minlength=n
    ).astype(np.float64)
    pop_all = _top_played(all_time, exclude=-1, depth=depth)
    pop_recent = _top_played(recent, exclude=-1, depth=depth)
    b = session_baskets(seqs.indptr, seqs.items, n=n)
    b.data[:] = 1.0  # 1 where the session played the track
    bt = sparse.csr_matrix(b.T)
    trans = _transition_counts(seqs.indptr, seqs.items, n=n)

    def cooc_counts(i: int) -> NDArray[np.int32]:
        s = int(seeds[i])
        counts = np.asarray((bt[s] @ b).todense()).ravel()
        counts[s] = 0
        return _top_played(counts, exclude=s, depth=depth)

    def transitions(i: int) -> NDArray[np.int32]:
        s = int(seeds[i])
        row = trans.getrow(s)
        order = np.lexsort((row.indices, -row.data))
        rows = row.indices[order]
        return rows[rows != s][:depth].astype(np.int32)

    return {
        "baseline: popularity, all time": lambda i: pop_all[pop_all != seeds[i]],
        f"baseline: most played, last {config.recent_days:g} days": (
            lambda i: pop_recent[pop_recent != seeds[i]]
        ),
        "baseline: co-occurrence counts": cooc_counts,
        "baseline: transitions": transitions,
    }


def _top_played(values: NDArray[np.float64], *, exclude: int, depth: int) -> NDArray[np.int32]:
    """The `depth` rows of the largest positive `values`, `exclude` left out."""
    order = top_rows(values, depth + 1)
    order = order[values[order] > 0]
    return order[order != exclude][:depth]


def _transition_counts(
    indptr: NDArray[np.int64], items: NDArray[np.int32], *, n: int
) -> sparse.csr_matrix:
    """n x n: how often track b followed track a within a sequence."""
    idx = following(indptr, len(items))
    trans = sparse.csr_matrix((np.ones(len(idx)), (items[idx - 1], items[idx])), shape=(n, n))
    trans.sum_duplicates()
    return trans


def format_time_table(results: dict[str, Any]) -> str:
    ks = results["ks"]
    t = results["test"]
    lines = [
        f"time split: train {results['split']['train']}, test {results['split']['test']}",
        f"  {results['split'].get('validation')}",
        f"  {t['pairs']} next plays in the test window, {t['pairs_with_known_previous']} with a "
        f"previous track in the catalogue, {t['evaluated']} evaluated; "
        f"{t['next_unknown_share']:.1%} of their next tracks are new (a miss for every list)",
        "",
        f"  {'list':<40}" + "".join(f" {'HR@' + str(k):>22}" for k in ks) + f" {'coverage':>9}",
    ]
    for name, row in results["lists"].items():
        cells = "".join(
            f" {row[f'hr@{k}']:>7.4f} [{row[f'hr@{k}_ci95'][0]:.4f}, {row[f'hr@{k}_ci95'][1]:.4f}]"
            for k in ks
        )
        lines.append(f"  {name:<40}{cells} {row['coverage']:>9.4f}")
    best = {
        k: max(
            (r[f"hr@{k}"] for r in results["lists"].values() if r["kind"] == "baseline"),
            default=0.0,
        )
        for k in ks
    }
    radio = results["lists"].get(RADIO)
    if radio is not None:
        lines.append("")
        lines.append(
            "  radio against the best baseline: "
            + ", ".join(
                f"HR@{k} {radio[f'hr@{k}'] / best[k] - 1:+.1%}" if best[k] else f"HR@{k} n/a"
                for k in ks
            )
        )
    return "\n".join(lines)


def _iso(t: float) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))
