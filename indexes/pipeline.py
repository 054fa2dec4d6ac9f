"""`segue build`: data set -> models -> Annoy indexes -> ensemble weights -> published bundle."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from indexes import bundle as fmt
from indexes.ann_tune import Tuned, exact_top, recall_at, tune_search_k
from indexes.datasets.shape import Dataset
from indexes.ensemble import default_weights
from indexes.ensemble_fit import fit_weights
from indexes.models.base import VectorModel, Vectors
from indexes.models.cooccurrence import Neighbours, cooccurrence_neighbours, popularity
from indexes.models.registry import default_models
from indexes.progress import log, stage
from indexes.splits import validation_split


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
    validation_fraction: float = 0.05
    min_validation_users: int = 150  # small data sets need a bigger share to label enough pairs
    max_validation_users: int = 2000
    validation_seeds_per_basket: int = 5
    max_validation_seeds: int = 5000
    cooc_top_n: int = 100
    candidates_per_source: int = 50
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
    `out/current` at it."""
    config = config or BuildConfig()
    models = models if models is not None else default_models(dims=config.dims)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)

    with stage("split validation users", timings):
        split = validation_split(
            data,
            fraction=config.validation_fraction,
            min_users=config.min_validation_users,
            max_users=config.max_validation_users,
            seed=config.seed,
        )
        train = split.train
        log(f"  {split.description}; training on {train.n_users} users")

    vectors: dict[str, Vectors] = {}
    for model in models:
        with stage(f"train {model.name}", timings):
            v = model.fit(train, seed=config.seed)
            v.check(train)
            vectors[model.name] = v
            log(
                f"  {model.name}: {int(v.track_mask.sum())} track and {int(v.artist_mask.sum())} artist vectors of {v.dims} dims"
            )

    baskets = {"tracks": train.interactions, "artists": train.artist_interactions()}
    cooc: dict[str, Neighbours] = {}
    listeners: dict[str, np.ndarray] = {}
    for entity, matrix in baskets.items():
        with stage(f"co-occurrence {entity}", timings):
            cooc[entity] = cooccurrence_neighbours(
                matrix, top_n=config.cooc_top_n, name=f"co-occurrence {entity}"
            )
            listeners[entity] = popularity(matrix)

    version = fmt.new_version(seed_text=data.name)
    staging = fmt.staging_dir(out, version)
    writer = fmt.BundleWriter(staging)
    items = data.items
    with stage("write id maps and metadata", timings):
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
            writer.array(f"{entity}.listeners.npy", listeners[entity].astype(np.float32))
            nb = cooc[entity]
            writer.array(f"cooc.{entity}.indptr.npy", nb.indptr)
            writer.array(f"cooc.{entity}.indices.npy", nb.indices)
            writer.array(f"cooc.{entity}.scores.npy", nb.scores)

    user_vectors = []
    for model in models:
        encode = vectors[model.name].user_encoder
        if encode is not None:
            with stage(f"user vectors {model.name}", timings):
                # every user of the data set, validation users included, against the trained items
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
                    n_trees=config.n_trees,
                    seed=config.seed,
                )
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
                index_entries.append(entry)

    manifest: dict[str, Any] = {
        "format_version": fmt.FORMAT_VERSION,
        "bundle_version": version,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "source": {**data.summary(), "load_report": data.report.to_json()},
        "training": {
            "validation": split.description,
            "config": asdict(config),
            "models": [{"name": m.name, **_params(m)} for m in models],
        },
        "entities": {"tracks": items.n_tracks, "artists": items.n_artists, "users": data.n_users},
        "indexes": index_entries,
        "user_vectors": user_vectors,
        "ensemble": {
            e: default_weights([x["model"] for x in index_entries if x["entity"] == e])
            for e in ("tracks", "artists")
        },
        "variants": config.variants,
    }
    writer.write_manifest(manifest)

    with stage("fit ensemble weights", timings):
        b = fmt.open_bundle(staging, verify_checksums=False)
        try:
            for entity in ("tracks", "artists"):
                manifest["ensemble"][entity] = fit_weights(
                    b,
                    entity=entity,
                    baskets=split.baskets[entity],
                    seed=config.seed,
                    seeds_per_basket=config.validation_seeds_per_basket,
                    max_seeds=config.max_validation_seeds,
                    candidates_per_source=config.candidates_per_source,
                )
        finally:
            b.close()
    manifest["build_seconds"] = {k: round(v, 2) for k, v in timings.items()}
    manifest = writer.write_manifest(manifest)

    with stage("verify", timings):
        fmt.verify(staging).close()
    path = staging
    if publish:
        with stage("publish", timings):
            path = fmt.publish(staging=staging, root=out, version=version, keep=config.keep,
                               make_current=make_current)  # fmt: skip
    total = time.perf_counter() - started
    timings["total"] = total
    return BuildResult(path=path, version=version, manifest=manifest, timings=timings)


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
