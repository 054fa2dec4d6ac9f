"""`segue build`: data set -> models -> Annoy indexes -> ensemble weights -> published bundle."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from indexes import bundle as fmt
from indexes.ann_tune import Tuned, exact_top, recall_at, tune_search_k
from indexes.bundle.layout import (
    COOC,
    POPULARITY,
    USERS,
    IndexEntry,
    Manifest,
    SignalSpec,
    SignalTable,
    TimeSpan,
    Training,
    UserVectorsEntry,
)
from indexes.bundle.neighbours import Neighbours
from indexes.config import BuildConfig, SignalConfig
from indexes.datasets.shape import Dataset
from indexes.ensemble import default_weights
from indexes.ensemble_fit import fit_next_weights, fit_weights
from indexes.models.base import VectorModel, Vectors
from indexes.models.registry import default_models
from indexes.progress import log, stage
from indexes.signals import DAY, TRANSFORMS, Signals, compute_signals
from indexes.splits import (
    Baskets,
    NextTrackPairs,
    known_at,
    map_pairs,
    next_track_pairs,
    time_splittable,
    validation_split,
)


class Engine(Protocol):
    """Where the models are trained and the signals computed: `LocalEngine` (this process) or
    `indexes.spark.engine.SparkEngine` (a Spark cluster). Either way the vectors and tables come
    back to this process, which writes the bundle."""

    @property
    def name(self) -> str: ...

    def models(self, config: BuildConfig) -> list[VectorModel]: ...

    def signals(self, data: Dataset, *, config: SignalConfig, as_of: float | None) -> Signals: ...


@dataclass(frozen=True)
class LocalEngine:
    """implicit, gensim, scikit-learn and numpy in this process."""

    name: str = "local"

    def models(self, config: BuildConfig) -> list[VectorModel]:
        return default_models(dims=config.dims, threads=config.threads)

    def signals(self, data: Dataset, *, config: SignalConfig, as_of: float | None) -> Signals:
        return compute_signals(data, config=config, as_of=as_of)


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
    signing_key: bytes | None = None,
    engine: Engine | None = None,
) -> BuildResult:
    """Trains every model on `data`, writes a bundle and (by default) publishes it under `out`:
    `publish` moves it from staging to `out/<version>`, `make_current` also points
    `out/current` at it. `signing_key`: the manifest is signed with it (HMAC-SHA256,
    `indexes.bundle.seal`; SEGUE_BUNDLE_SIGNING_KEY), and a server with the key refuses a
    bundle without it.

    The ensemble weights are chosen first on held-out data: with per-play times, a bundle of
    everything before the last `validation_days` is built and the weights are fitted on what
    was played next inside that window; without times, on the baskets of held-out users. Then
    every model and signal is refit on all of `data`, with those weights. `engine`: where the
    models and signals are computed (default: `LocalEngine`)."""
    config = config or BuildConfig()
    if engine is None:
        engine = LocalEngine()
    if models is None:
        models = engine.models(config)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    with stage("choose the validation data", timings):
        plan = _validation_plan(data, config)
        log(f"  {plan.description}")
    ensemble = _fitted_weights(
        plan, out=out, config=config, models=models, engine=engine, timings=timings
    )
    version = fmt.new_version(seed_text=data.name)
    staging = fmt.staging_dir(out, version)
    manifest = _write_bundle(
        data, staging=staging, version=version, config=config, models=models, engine=engine,
        ensemble=ensemble, timings=timings, tune=True, as_of=config.as_of,
        validation=plan.description, signing_key=signing_key,
    )  # fmt: skip
    path = _verify_and_publish(
        staging, out=out, version=version, config=config, publish=publish,
        make_current=make_current, timings=timings, signing_key=signing_key,
    )  # fmt: skip
    timings["total"] = time.perf_counter() - started
    return BuildResult(path=path, version=version, manifest=manifest.to_json(), timings=timings)


def _fitted_weights(
    plan: _Plan,
    *,
    out: Path,
    config: BuildConfig,
    models: list[VectorModel],
    engine: Engine,
    timings: dict[str, float],
) -> dict[str, Any]:
    """The ensemble weights of each entity, fitted on a bundle of `plan.train` (written beside
    the bundles, removed once the weights are fitted)."""
    with stage("validation bundle", timings):
        version = fmt.new_version(seed_text="validation")
        staging = fmt.staging_dir(out, version)
        _write_bundle(
            plan.train, staging=staging, version=version, config=config, models=models,
            engine=engine, ensemble=None, timings=None, tune=False, as_of=plan.as_of,
        )  # fmt: skip
    with stage("fit ensemble weights", timings):
        ensemble: dict[str, Any] = {}
        b = fmt.open_bundle(staging, verify_checksums=False)
        try:
            for entity in fmt.ENTITIES:
                fitted = _fit_entity(b, entity=entity, plan=plan, config=config)
                ensemble[entity] = {**fitted, "validation": plan.description}
        finally:
            b.close()
            shutil.rmtree(staging, ignore_errors=True)
    return ensemble


def _verify_and_publish(
    staging: Path,
    *,
    out: Path,
    version: str,
    config: BuildConfig,
    publish: bool,
    make_current: bool,
    timings: dict[str, float],
    signing_key: bytes | None,
) -> Path:
    """Opens the staged bundle with every check and checksum, then (with `publish`) publishes
    it; returns where the bundle is."""
    with stage("verify", timings):
        fmt.verify(staging, signing_key=signing_key).close()
    if not publish:
        return staging
    with stage("publish", timings):
        return fmt.publish(
            staging=staging, root=out, version=version, keep=config.keep, make_current=make_current
        )


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


def _write_bundle(
    data: Dataset,
    *,
    staging: Path,
    version: str,
    config: BuildConfig,
    models: list[VectorModel],
    engine: Engine,
    ensemble: dict[str, Any] | None,
    timings: dict[str, float] | None,
    tune: bool,
    as_of: float | None,
    validation: str = "",
    signing_key: bytes | None = None,
) -> Manifest:
    """Trains the models and computes the signals of `data`, writes every file of a bundle and
    then its manifest into `staging`. `ensemble`: the fitted weights (None: placeholders).
    `tune`: the final bundle, whose indexes get their search_k tuned; the validation bundle
    keeps Annoy's default and fewer trees."""
    vectors = _train(data, models=models, config=config, timings=timings)
    with stage("signals", timings):
        signals = engine.signals(data, config=config.signals, as_of=as_of)
    writer = fmt.BundleWriter(staging)
    written = _write_files(
        writer, data, models=models, vectors=vectors, signals=signals, config=config, tune=tune,
        timings=timings,
    )  # fmt: skip
    if ensemble is None:
        ensemble = _placeholder_weights(written.indexes, signals)
    manifest = _manifest(
        data, version=version, config=config, models=models, validation=validation,
        signals=signals, written=written, ensemble=ensemble, timings=timings, engine=engine.name,
    )  # fmt: skip
    return writer.write_manifest(manifest, signing_key=signing_key)


def _manifest(
    data: Dataset,
    *,
    version: str,
    config: BuildConfig,
    models: list[VectorModel],
    validation: str,
    signals: Signals,
    written: _Written,
    ensemble: dict[str, Any],
    timings: dict[str, float] | None,
    engine: str,
) -> Manifest:
    """The manifest of a bundle whose files are written (but for the manifest's `files`)."""
    return Manifest(
        format_version=fmt.FORMAT_VERSION,
        bundle_version=version,
        created_at=_iso(time.time()),
        source={**data.summary(), "load_report": data.report.to_json()},
        time=_time_entry(signals, config),
        training=Training(
            validation=validation,
            config={**asdict(config), "engine": engine},
            models=[{"name": m.name, **_params(m)} for m in models],
        ),
        entities={
            "tracks": data.items.n_tracks,
            "artists": data.items.n_artists,
            USERS: data.n_users,
        },
        indexes=written.indexes,
        user_vectors=written.user_vectors,
        signals=written.signals,
        ensemble=ensemble,
        variants=config.variants,
        build_seconds=None if timings is None else {k: round(v, 2) for k, v in timings.items()},
    )


@dataclass(frozen=True)
class _Written:
    """What the manifest lists of the files written."""

    indexes: list[IndexEntry]
    user_vectors: list[UserVectorsEntry]
    signals: dict[str, SignalSpec]


def _write_files(
    writer: fmt.BundleWriter,
    data: Dataset,
    *,
    models: list[VectorModel],
    vectors: dict[str, Vectors],
    signals: Signals,
    config: BuildConfig,
    tune: bool,
    timings: dict[str, float] | None,
) -> _Written:
    with stage("write id maps, metadata and signals", timings):
        _write_catalogue(writer, data)
        signal_specs = _write_signals(writer, signals)
    user_vectors = _write_user_vectors(
        writer, data, models=models, vectors=vectors, timings=timings
    )
    indexes = _write_indexes(
        writer, models=models, vectors=vectors, config=config, tune=tune, timings=timings
    )
    return _Written(indexes=indexes, user_vectors=user_vectors, signals=signal_specs)


def _train(
    data: Dataset,
    *,
    models: list[VectorModel],
    config: BuildConfig,
    timings: dict[str, float] | None,
) -> dict[str, Vectors]:
    vectors: dict[str, Vectors] = {}
    for model in models:
        with stage(f"train {model.name}", timings):
            v = model.fit(data, seed=config.seed)
            v.check(data)
            vectors[model.name] = v
            log(
                f"  {model.name}: {int(v.track_mask.sum())} track and "
                f"{int(v.artist_mask.sum())} artist vectors of {v.dims} dims"
            )
    return vectors


def _write_catalogue(writer: fmt.BundleWriter, data: Dataset) -> None:
    """Ids and names of tracks and artists, each track's artist, the users and their plays."""
    items = data.items
    writer.ids("tracks", items.track_ids)
    writer.ids("artists", items.artist_ids)
    writer.names("tracks", items.track_names.tolist())
    writer.names("artists", items.artist_names.tolist())
    writer.track_artist(items.track_artist)
    plays = data.interactions.tocsr()
    plays.sort_indices()
    writer.users(
        data.user_ids,
        Neighbours(
            indptr=plays.indptr.astype(np.int64),
            indices=plays.indices.astype(np.int32),
            scores=plays.data.astype(np.float32),
        ),
    )


def _write_signals(writer: fmt.BundleWriter, signals: Signals) -> dict[str, SignalSpec]:
    """Each entity's neighbour tables and popularity arrays; returns what the manifest lists
    of them (everything but the built-in cooc and listeners)."""
    specs: dict[str, SignalSpec] = {}
    for entity in fmt.ENTITIES:
        sig = signals.entities[entity]
        writer.listeners(entity, sig.popularity[POPULARITY])
        for name, table in sig.tables.items():
            writer.table(name, entity, table)
        pops = [p for p in sig.popularity if p != POPULARITY]
        for name in pops:
            writer.popularity(entity, name, sig.popularity[name])
        tables = {
            name: SignalTable(transform=TRANSFORMS[name], entries=len(table.indices))
            for name, table in sig.tables.items()
            if name != COOC
        }
        specs[entity] = SignalSpec(tables=tables, popularity=pops)
    return specs


def _write_user_vectors(
    writer: fmt.BundleWriter,
    data: Dataset,
    *,
    models: list[VectorModel],
    vectors: dict[str, Vectors],
    timings: dict[str, float] | None,
) -> list[UserVectorsEntry]:
    """The user vectors of the models that encode users."""
    entries = []
    for model in models:
        encode = vectors[model.name].user_encoder
        if encode is not None:
            with stage(f"user vectors {model.name}", timings):
                entries.append(writer.user_vectors(model.name, encode(data.interactions)))
    return entries


def _write_indexes(
    writer: fmt.BundleWriter,
    *,
    models: list[VectorModel],
    vectors: dict[str, Vectors],
    config: BuildConfig,
    tune: bool,
    timings: dict[str, float] | None,
) -> list[IndexEntry]:
    """One Annoy index per model and entity that has vectors."""
    entries = []
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
                    model=model.name, entity=entity, vectors=m, mask=mask, metric=model.metric,
                    # the validation bundle only proposes candidates to fit weights on: a third
                    # of the trees (the build's cost is the final bundle's, not twice it)
                    n_trees=config.n_trees if tune else max(10, config.n_trees // 3),
                    seed=config.seed,
                )  # fmt: skip
                if tune:  # else Annoy's own default work per query (the entry's default)
                    entry = _tuned(writer.dir / entry.files.index, entry, m[mask], config)
                entries.append(entry)
    return entries


def _tuned(path: Path, entry: IndexEntry, vectors: np.ndarray, config: BuildConfig) -> IndexEntry:
    """The entry with the search_k it is to be queried with, and what that search_k reaches."""
    tuned = _tune(path, entry, vectors, config)
    short = (
        f" (below the {tuned.target} target: --max-search-k {config.max_search_k})"
        if tuned.missed_target
        else ""
    )
    log(
        f"  {entry.model}.{entry.entity}: search_k {tuned.search_k}, "
        f"recall@10 {tuned.recall:.3f}, {tuned.ms_per_query:.3f} ms/query{short}"
    )
    return replace(entry, tuning=tuned.tuning())


def _placeholder_weights(indexes: list[IndexEntry], signals: Signals) -> dict[str, Any]:
    """Equal weights on every source, for the validation bundle (its weights are not used)."""
    return {
        entity: default_weights(
            [x.model for x in indexes if x.entity == entity],
            list(signals.entities[entity].tables),
            list(signals.entities[entity].popularity),
        )
        for entity in fmt.ENTITIES
    }


def _time_entry(signals: Signals, config: BuildConfig) -> TimeSpan | None:
    """The time span of the data and the "as of" time the recency weights are taken at."""
    if signals.time_span is None or signals.as_of is None:
        return None
    first, last = signals.time_span
    return TimeSpan(
        first_play=_iso(first),
        last_play=_iso(last),
        as_of=_iso(signals.as_of),
        half_lives_days=list(config.signals.half_lives_days),
        transition_half_life_days=config.signals.transition_half_life_days,
    )


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _tune(path: Path, entry: IndexEntry, vectors: np.ndarray, config: BuildConfig) -> Tuned:
    from annoy import AnnoyIndex

    index = AnnoyIndex(entry.dims, entry.metric)  # type: ignore[arg-type]  # a model's metric
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
