"""The Spark engine against the local one: training stages and precompute rate.

    PYTHONPATH=. python loadtest/bench_spark.py train --tracks 100000 --engine local
    PYTHONPATH=. python loadtest/bench_spark.py train --tracks 100000 --engine spark --master 'local[1]'
    PYTHONPATH=. python loadtest/bench_spark.py precompute --bundles DIR --engine spark \\
        --master 'local[2]' --max-chunks 8

`precompute` times radio lists only (the related-artist chunks are marked done first).
`train` times what the engines do differently on the same data (ALS, word2vec, every signal);
the rest of a build (content model, Annoy indexes, ensemble fit, writing) is the same code
whichever engine. `precompute` writes `--max-chunks` chunks into a fresh SQLite store and prints
lists/s. Each line says the load average it ran under (the machine may be shared).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any


def _load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def train(args: argparse.Namespace) -> None:
    from indexes.config import BuildConfig
    from indexes.datasets.synthetic import generate_synthetic
    from indexes.pipeline import LocalEngine

    data = generate_synthetic(n_tracks=args.tracks, seed=42)
    s = data.summary()
    print(f"synthetic:{args.tracks}: {s['users']} users, {s['interactions']} user-track pairs, "
          f"{data.sequences.n_items} plays; {_load()}")  # fmt: skip
    config = BuildConfig()
    if args.engine == "local":
        engine = LocalEngine()
        label = "local"
    else:
        from indexes.spark.engine import SparkEngine

        engine = SparkEngine(master=args.master)  # type: ignore[assignment]
        label = f"spark {args.master}"
        t = time.perf_counter()
        engine.session  # type: ignore[attr-defined]  # noqa: B018
        print(f"{label}: session start {time.perf_counter() - t:.1f}s")
    total = 0.0
    for model in engine.models(config)[:2]:  # als, word2vec (content is local in both)
        t = time.perf_counter()
        model.fit(data, seed=config.seed)
        dt = time.perf_counter() - t
        total += dt
        print(f"{label}: {model.name} {dt:.1f}s; {_load()}")
    t = time.perf_counter()
    engine.signals(data, config=config.signals, as_of=None)
    dt = time.perf_counter() - t
    total += dt
    print(f"{label}: signals {dt:.1f}s; {_load()}")
    print(f"{label}: als + word2vec + signals {total:.1f}s")
    if args.engine == "spark":
        engine.stop()  # type: ignore[attr-defined]


def precompute(args: argparse.Namespace) -> None:
    from service.precompute import precompute as local_precompute
    from service.settings import Settings
    from service.store.factory import open_store

    with tempfile.TemporaryDirectory(prefix="bench-spark-") as tmp:
        settings = Settings(store=f"sqlite:///{Path(tmp) / 'store.db'}")
        config = settings.precompute_config(
            processes=args.processes, chunk_size=args.chunk_size, max_chunks=args.max_chunks
        )
        store = open_store(settings.store, options=settings.store_options())
        _radio_only(store, bundles=args.bundles, config=config)
        try:
            if args.engine == "local":
                label = f"local --processes {args.processes}"
                t = time.perf_counter()
                report = local_precompute(bundles=args.bundles, store=store, config=config)
            else:
                from indexes.spark.engine import SparkEngine
                from indexes.spark.precompute import spark_precompute

                engine = SparkEngine(master=args.master)
                label = f"spark {args.master}"
                session = engine.session
                t = time.perf_counter()
                report = spark_precompute(
                    session, bundles=args.bundles, store=store, settings=settings, config=config
                )
            dt = time.perf_counter() - t
            if args.engine == "spark":
                engine.stop()
        finally:
            store.close()
    n = sum(report.written.values())
    print(f"{label}: {n} lists in {dt:.1f}s = {n / dt:.1f} lists/s; {_load()}")


def _radio_only(store: Any, *, bundles: Path, config: Any) -> None:
    """Marks every related-artists chunk done, so that the chunks timed are radio lists (the
    100M of the projection; a related list costs less)."""
    import math

    from indexes.bundle import read_typed_manifest, resolve_current
    from service.precompute import task_name
    from service.store.base import RELATED

    manifest = read_typed_manifest(resolve_current(bundles))
    task = task_name(RELATED, config)
    for chunk in range(math.ceil(manifest.entities["artists"] / config.chunk_size)):
        store.mark_done(version=manifest.bundle_version, task=task, chunk=chunk, items=0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    sub = p.add_subparsers(dest="what", required=True)
    t = sub.add_parser("train")
    t.add_argument("--tracks", type=int, default=100_000)
    pc = sub.add_parser("precompute")
    pc.add_argument("--bundles", type=Path, required=True)
    pc.add_argument("--processes", type=int, default=2)
    pc.add_argument("--chunk-size", type=int, default=500)
    pc.add_argument("--max-chunks", type=int, default=8)
    for q in (t, pc):
        q.add_argument("--engine", choices=("local", "spark"), default="local")
        q.add_argument("--master", default="local[2]")
    args = p.parse_args()
    train(args) if args.what == "train" else precompute(args)


if __name__ == "__main__":
    main()
