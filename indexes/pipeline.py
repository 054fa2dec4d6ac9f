"""`segue build`: data set -> models -> Annoy indexes -> ensemble weights -> published bundle."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from indexes import bundle as fmt
from indexes.ann_tune import Tuned, exact_top, recall_at, tune_search_k
from indexes.datasets.shape import Dataset
from indexes.ensemble import default_weights
from indexes.ensemble_fit import fit_next_weights, fit_weights
from indexes.models.base import VectorModel, Vectors
from indexes.models.registry import default_models
from indexes.progress import log, stage
from indexes.signals import (
    COOC,
    DAY,
    POPULARITY,
    TRANSFORMS,
    SignalConfig,
    Signals,
    compute_signals,
)
from indexes.splits import (
    Baskets,
    NextTrackPairs,
    known_at,
    map_pairs,
    next_track_pairs,
    time_splittable,
    validation_split,
)


@dataclass(frozen=True)
class BuildConfig:
    dims: int = 32
    # Annoy trees per index. Fewer trees make a query cheaper at a given search_k (each query
    # descends every tree). At 1M tracks 30 reach recall 0.95 in about the least time of the
    # counts tried (10 to 200), and more steadily from one build to the next than 20
    # (loadtest/README.md); they also build faster and take less disk than 50.
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


@dataclass
class BuildResult:
    path: Path
    version: str
    manifest: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)


def build_bundle(
    data: Dataset,
    *,
    out: Path,
    config: BuildConfig | None = None,
    models: list[VectorModel] | None = None,
    publish: bool = True,
    make_current: bool = True,
) -> BuildResult:
    """Trains every model on `data`, writes a bundle and (by default) publishes it under `out`:
    `publish` moves it from staging to `out/<version>`, `make_current` also points
    `out/current` at it.

    The ensemble weights are chosen first on held-out data: with per-play times, a bundle of
    everything before the last `validation_days` is built and the weights are fitted on what
    was played next inside that window; without times, on the baskets of held-out users. Then
    every model and signal is refit on all of `data`, with those weights."""
    config = config or BuildConfig()
    models = (
        models if models is not None else default_models(dims=config.dims, threads=config.threads)
    )
    timings: dict[str, float] = {}
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)

    with stage("choose the validation data", timings):
        plan = _validation_plan(data, config)
        log(f"  {plan.description}")
    with stage("validation bundle", timings):
        v_version = fmt.new_version(seed_text="validation")
        staged = _write_bundle(
            plan.train, staging=fmt.staging_dir(out, v_version), version=v_version,
            config=config, models=models, ensemble=None, timings=None, tune=False,
            as_of=plan.as_of,
        )  # fmt: skip
    with stage("fit ensemble weights", timings):
        ensemble: dict[str, Any] = {}
        b = fmt.open_bundle(staged.path, verify_checksums=False)
        try:
            for entity in ("tracks", "artists"):
                ensemble[entity] = _fit_entity(b, entity=entity, plan=plan, config=config)
                ensemble[entity]["validation"] = plan.description
        finally:
            b.close()
            shutil.rmtree(staged.path, ignore_errors=True)

    version = fmt.new_version(seed_text=data.name)
    staging = fmt.staging_dir(out, version)
    built = _write_bundle(
        data, staging=staging, version=version, config=config, models=models, ensemble=ensemble,
        timings=timings, tune=True, as_of=config.as_of, validation=plan.description,
    )  # fmt: skip
    with stage("verify", timings):
        fmt.verify(staging).close()
    path = staging
    if publish:
        with stage("publish", timings):
            path = fmt.publish(staging=staging, root=out, version=version, keep=config.keep,
                               make_current=make_current)  # fmt: skip
    timings["total"] = time.perf_counter() - started
    return BuildResult(path=path, version=version, manifest=built.manifest, timings=timings)


@dataclass(frozen=True)
class _Plan:
    """What the ensemble weights are fitted on: a bundle of `train`, then either next-track
    pairs after it (`pairs`, time split) or held-out baskets (`baskets`, user split)."""

    train: Dataset
    description: str
    as_of: float | None = None
    pairs: NextTrackPairs | None = None
    baskets: dict[str, Baskets] | None = None
    ranked: bool = False  # baskets list each user's items most played first


def _validation_plan(data: Dataset, config: BuildConfig) -> _Plan:
    if time_splittable(data):
        first, last = data.sequences.time_span() or (0.0, 0.0)
        end = config.as_of if config.as_of is not None else last
        start = end - config.validation_days * DAY
        if start > first:
            pairs = next_track_pairs(data, start=start, end=end + 1.0)
            if len(pairs) >= 20:
                # the validation bundle knows only the tracks played before the window
                train, track_row = known_at(data, start)
                pairs = map_pairs(pairs, track_row)
                pairs = pairs.take((pairs.prev >= 0) & (pairs.next >= 0))
                return _Plan(
                    train=train,
                    description=(
                        f"time split: weights fitted on the {len(pairs)} next plays of the "
                        f"{config.validation_days:g} days from {_iso(start)}, on models of the "
                        "data before it"
                    ),
                    as_of=start,
                    pairs=pairs,
                )
    split = validation_split(
        data,
        fraction=config.validation_fraction,
        min_users=config.min_validation_users,
        max_users=config.max_validation_users,
        seed=config.seed,
    )
    return _Plan(
        train=split.train,
        description=f"user split: weights fitted on {split.description}",
        baskets=split.ranked or split.baskets,
        ranked=split.ranked is not None,
    )


def _fit_entity(
    bundle: fmt.Bundle, *, entity: str, plan: _Plan, config: BuildConfig
) -> dict[str, Any]:
    if plan.pairs is not None:
        pairs = plan.pairs
        if entity == "artists":
            artist_of = np.asarray(bundle.tracks.artist)
            pairs = pairs.to_artists(artist_of)
        return fit_next_weights(
            bundle,
            entity=entity,
            prev=pairs.prev,
            next=pairs.next,
            seed=config.seed,
            max_seeds=config.max_validation_seeds,
            candidates_per_source=config.radio_candidates_per_source,
        )
    assert plan.baskets is not None
    return fit_weights(
        bundle,
        entity=entity,
        baskets=plan.baskets[entity],
        ranked=plan.ranked,
        seed=config.seed,
        seeds_per_basket=config.validation_seeds_per_basket,
        max_seeds=config.max_validation_seeds,
        candidates_per_source=config.candidates_per_source,
    )


@dataclass
class _Written:
    path: Path
    manifest: dict[str, Any]


def _write_bundle(
    data: Dataset,
    *,
    staging: Path,
    version: str,
    config: BuildConfig,
    models: list[VectorModel],
    ensemble: dict[str, Any] | None,
    timings: dict[str, float] | None,
    tune: bool,
    as_of: float | None,
    validation: str = "",
) -> _Written:
    """Trains the models and computes the signals of `data`, writes every file of a bundle and
    its manifest into `staging`. `ensemble`: the fitted weights (None: placeholders)."""
    vectors: dict[str, Vectors] = {}
    for model in models:
        with stage(f"train {model.name}", timings):
            v = model.fit(data, seed=config.seed)
            v.check(data)
            vectors[model.name] = v
            log(
                f"  {model.name}: {int(v.track_mask.sum())} track and {int(v.artist_mask.sum())} artist vectors of {v.dims} dims"
            )

    with stage("signals", timings):
        signals = compute_signals(data, config=config.signals, as_of=as_of)

    writer = fmt.BundleWriter(staging)
    items = data.items
    signal_specs: dict[str, Any] = {}
    with stage("write id maps, metadata and signals", timings):
        writer.ids("tracks", items.track_ids)
        writer.ids("artists", items.artist_ids)
        writer.strings("tracks.names", items.track_names)
        writer.strings("artists.names", items.artist_names)
        writer.strings("tracks.names_lower", [n.casefold() for n in items.track_names.tolist()])
        writer.strings("artists.names_lower", [n.casefold() for n in items.artist_names.tolist()])
        plays = data.interactions.tocsr()
        plays.sort_indices()
        writer.ids("users", data.user_ids)
        writer.array("users.plays.indptr.npy", plays.indptr.astype(np.int64))
        writer.array("users.plays.indices.npy", plays.indices.astype(np.int32))
        writer.array("users.plays.counts.npy", plays.data.astype(np.float32))
        writer.array("tracks.artist.npy", items.track_artist.astype(np.int32))
        for entity in ("tracks", "artists"):
            sig = signals.entities[entity]
            writer.array(f"{entity}.listeners.npy", sig.popularity[POPULARITY].astype(np.float32))
            tables: dict[str, Any] = {}
            for name, nb in sig.tables.items():
                writer.array(f"{name}.{entity}.indptr.npy", nb.indptr)
                writer.array(f"{name}.{entity}.indices.npy", nb.indices)
                writer.array(f"{name}.{entity}.scores.npy", nb.scores)
                if name != COOC:
                    tables[name] = {"transform": TRANSFORMS[name], "entries": len(nb.indices)}
            pops = [p for p in sig.popularity if p != POPULARITY]
            for name in pops:
                writer.array(f"{entity}.{name}.npy", sig.popularity[name].astype(np.float32))
            signal_specs[entity] = {"tables": tables, "popularity": pops}

    user_vectors = []
    for model in models:
        encode = vectors[model.name].user_encoder
        if encode is not None:
            with stage(f"user vectors {model.name}", timings):
                users = encode(data.interactions)
                writer.array(f"{model.name}.users.npy", users)
                user_vectors.append(
                    {
                        "model": model.name,
                        "file": f"{model.name}.users.npy",
                        "dims": int(users.shape[1]),
                    }
                )

    index_entries = []
    for model in models:
        v = vectors[model.name]
        for entity, m, mask in (
            ("tracks", v.tracks, v.track_mask),
            ("artists", v.artists, v.artist_mask),
        ):
            if not mask.any():
                log(f"  {model.name}.{entity}: no vectors, no index")
                continue
            with stage(f"annoy {model.name}.{entity}", timings):
                entry = writer.annoy(
                    model=model.name,
                    entity=entity,
                    vectors=m,
                    mask=mask,
                    metric=model.metric,
                    # the validation bundle only proposes candidates to fit weights on: a third
                    # of the trees (the build's cost is the final bundle's, not twice it)
                    n_trees=config.n_trees if tune else max(10, config.n_trees // 3),
                    seed=config.seed,
                )
                if tune:
                    tuned = _tune(staging / entry["file"], entry, m[mask], config)
                    entry.update(tuned.to_json())
                    short = (
                        f" (below the {tuned.target} target: --max-search-k {config.max_search_k})"
                        if tuned.missed_target
                        else ""
                    )
                    log(
                        f"  {model.name}.{entity}: search_k {tuned.search_k}, recall@10 {tuned.recall:.3f}, "
                        f"{tuned.ms_per_query:.3f} ms/query{short}"
                    )
                else:  # the validation bundle: Annoy's own default work per query
                    entry["search_k"] = -1
                index_entries.append(entry)

    if ensemble is None:
        ensemble = {}
        for e in ("tracks", "artists"):
            sig = signals.entities[e]
            ensemble[e] = default_weights(
                [x["model"] for x in index_entries if x["entity"] == e],
                list(sig.tables),
                list(sig.popularity),
            )
    manifest: dict[str, Any] = {
        "format_version": fmt.FORMAT_VERSION,
        "bundle_version": version,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "source": {**data.summary(), "load_report": data.report.to_json()},
        "time": _time_entry(signals, config),
        "training": {
            "validation": validation,
            "config": asdict(config),
            "models": [{"name": m.name, **_params(m)} for m in models],
        },
        "entities": {"tracks": items.n_tracks, "artists": items.n_artists, "users": data.n_users},
        "indexes": index_entries,
        "user_vectors": user_vectors,
        "signals": signal_specs,
        "ensemble": ensemble,
        "variants": config.variants,
    }
    if timings is not None:
        manifest["build_seconds"] = {k: round(v, 2) for k, v in timings.items()}
    manifest = writer.write_manifest(manifest)
    return _Written(path=staging, manifest=manifest)


def _time_entry(signals: Signals, config: BuildConfig) -> dict[str, Any] | None:
    """The time span of the data and the "as of" time the recency weights are taken at."""
    if signals.time_span is None or signals.as_of is None:
        return None
    first, last = signals.time_span
    return {
        "first_play": _iso(first),
        "last_play": _iso(last),
        "as_of": _iso(signals.as_of),
        "half_lives_days": list(config.signals.half_lives_days),
        "transition_half_life_days": config.signals.transition_half_life_days,
    }


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _tune(path: Path, entry: dict[str, Any], vectors: np.ndarray, config: BuildConfig) -> Tuned:
    from annoy import AnnoyIndex

    index = AnnoyIndex(entry["dims"], entry["metric"])
    index.load(str(path))
    try:
        if config.search_k is not None:
            queries = np.random.default_rng(config.seed).choice(
                len(vectors), size=min(config.tune_queries, len(vectors)), replace=False
            )
            recall, ms = recall_at(index, exact_top(vectors, queries), search_k=config.search_k)
            return Tuned(search_k=config.search_k, recall=recall, ms_per_query=ms)
        return tune_search_k(
            index,
            vectors,
            target=config.target_recall,
            queries=config.tune_queries,
            seed=config.seed,
            max_search_k=config.max_search_k,
        )
    finally:
        index.unload()


def _params(model: VectorModel) -> dict[str, Any]:
    try:
        params: dict[str, Any] = asdict(model)  # type: ignore[call-overload]
    except TypeError:
        params = {}
    return json.loads(json.dumps(params, default=str))
