"""`segue precompute --engine spark`: the chunks of the local precompute as Spark tasks.

The driver lists the chunks not yet done (the store's `chunks_done`, as the local precompute);
each task maps the bundle once per Python worker (a shared path, or a copy shipped with
SparkFiles), computes its lists with the service's own code (`service.precompute.compute_lists`),
writes them through the store driver (the Cassandra store keeps its writes in flight) and marks
its chunk done. A failed or interrupted run resumes where it stopped, chunk by chunk."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from indexes.bundle import resolve_current
from indexes.progress import log
from service.settings import PrecomputeConfig, Settings, StoreOptions
from service.store.base import Store

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from service.bundle_holder import LoadedBundle
    from service.precompute import PrecomputeReport

TASKS_PER_CORE = 4  # chunks are dealt out in this many slices per core (stragglers even out)


@dataclass(frozen=True)
class _Job:
    """What every task needs; pickled once into the closure of the job."""

    bundle: str  # a path every executor reads, or the SparkFiles name of the shipped copy
    shipped: bool
    store_url: str
    store_options: StoreOptions
    version: str
    counts: dict[str, int]
    config: PrecomputeConfig


def spark_precompute(
    spark: SparkSession,
    *,
    bundles: Path,
    store: Store,
    settings: Settings,
    config: PrecomputeConfig,
    ship_bundle: bool = False,
) -> PrecomputeReport:
    from service.precompute import finish, plan

    start = time.perf_counter()
    path = resolve_current(bundles)
    work = plan(path=path, store=store, config=config)
    version, counts, todo, report = work.version, work.counts, work.todo, work.report
    sc = spark.sparkContext
    if ship_bundle:
        sc.addFile(str(path), recursive=True)
    job = _Job(
        bundle=path.name if ship_bundle else str(path.resolve()), shipped=ship_bundle,
        store_url=settings.store, store_options=settings.store_options(), version=version,
        counts=counts, config=config,
    )  # fmt: skip
    slices = max(1, min(len(todo), sc.defaultParallelism * TASKS_PER_CORE))
    log(
        f"precompute of bundle {version} into {store.url} on Spark ({sc.master}): "
        f"{len(todo)} chunks in {slices} tasks"
    )
    if todo:
        for kind, n in sc.parallelize(todo, slices).mapPartitions(job_runner(job)).collect():
            report.written[kind] += n
    return finish(work, start=start)


def job_runner(job: _Job):  # type: ignore[no-untyped-def]  # a function Spark pickles
    def run(tasks: Iterable[tuple[str, int]]) -> Iterator[tuple[str, int]]:
        return _run_partition(job, tasks)

    return run


def _run_partition(job: _Job, tasks: Iterable[tuple[str, int]]) -> Iterator[tuple[str, int]]:
    """In an executor: the lists of each chunk, written and marked done one chunk at a time."""
    from service.precompute import chunk_rows, compute_lists, list_key, task_name
    from service.store.factory import open_store

    tasks = list(tasks)
    if not tasks:
        return
    loaded = _bundle(job)
    # the driver applied the schema already (chunks_done); executors only read and write
    store = open_store(job.store_url, options=job.store_options, apply_schema=False)
    try:
        for kind, chunk in tasks:
            rows = chunk_rows(kind, chunk, counts=job.counts, config=job.config)
            items = compute_lists(loaded, kind=kind, rows=rows, config=job.config)
            store.put_many(
                kind=kind, version=list_key(kind, version=job.version, config=job.config),
                items=items,
            )  # fmt: skip
            store.mark_done(
                version=job.version, task=task_name(kind, job.config), chunk=chunk,
                items=len(items),
            )  # fmt: skip
            yield kind, len(items)
    finally:
        store.close()


_loaded: dict[str, LoadedBundle] = {}  # per Python worker: the bundle, mapped once


def _bundle(job: _Job) -> LoadedBundle:
    from service.precompute import load_for_precompute

    if job.bundle not in _loaded:
        if job.shipped:
            from pyspark import SparkFiles

            path = Path(SparkFiles.get(job.bundle))
        else:
            path = Path(job.bundle)
        _loaded[job.bundle] = load_for_precompute(path, job.config)
    return _loaded[job.bundle]
