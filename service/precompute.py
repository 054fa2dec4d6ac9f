"""`segue precompute`: the top radio neighbours of every track and the related artists of every
artist, written to the store in bulk, keyed by bundle version.

Work is cut into chunks of consecutive rows. Worker processes (each mapping the bundle) compute
chunks; the parent writes each finished chunk to the store (concurrently: the Cassandra store
keeps many writes in flight) and then records the chunk as done. A run that is interrupted
resumes where it stopped: chunks recorded as done are skipped.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from indexes.bundle import read_typed_manifest, resolve_current
from indexes.progress import log
from service.bundle_holder import LoadedBundle, load
from service.neighbours import RELATED_SIZE, RadioShape, list_version, related_version
from service.settings import PrecomputeConfig
from service.store.base import LIST_FORMAT, RADIO, RELATED, Ranked, Store, check_kind


@dataclass
class PrecomputeReport:
    version: str
    written: dict[str, int] = field(default_factory=dict)  # items written per kind
    skipped: dict[str, int] = field(default_factory=dict)  # items already done per kind
    seconds: float = 0.0
    complete: bool = False

    def summary(self) -> str:
        lines = [
            f"precompute of bundle {self.version}: {'complete' if self.complete else 'PARTIAL'}"
        ]
        for kind in (RELATED, RADIO):
            what = "artists" if kind == RELATED else "tracks"
            lines.append(
                f"  {kind:<8} {self.written.get(kind, 0):>9} {what} written, "
                f"{self.skipped.get(kind, 0):>9} already done"
            )
        total = sum(self.written.values())
        lines.append(
            f"  {total} lists in {self.seconds:.1f}s ({total / max(self.seconds, 1e-9):,.0f} lists/s)"
        )
        return "\n".join(lines)


def task_name(kind: str, config: PrecomputeConfig) -> str:
    """Progress is recorded per task; a different chunking, list shape or list encoding is a
    different task."""
    if kind == RADIO:
        return (
            f"{kind}/top{config.radio_size}/{radio_shape(config).digest()}/chunk{config.chunk_size}"
        )
    return f"{kind}/top{RELATED_SIZE}/f{LIST_FORMAT}/chunk{config.chunk_size}"


def radio_shape(config: PrecomputeConfig) -> RadioShape:
    return RadioShape(
        size=config.radio_size, artist_cap=config.radio_artist_cap,
        per_source=config.radio_candidates_per_source, search_k=config.search_k,
    )  # fmt: skip


def list_key(kind: str, *, version: str, config: PrecomputeConfig) -> str:
    """The store version a kind's lists are written under (the one the service reads)."""
    return (
        list_version(version, shape=radio_shape(config))
        if kind == RADIO
        else related_version(version)
    )


@dataclass
class Plan:
    """What a precompute run of one bundle has to do: the chunks not done yet (of every engine:
    the local pool here, Spark in indexes/spark/precompute.py)."""

    path: Path
    version: str
    counts: dict[str, int]  # items per kind
    todo: list[tuple[str, int]]  # (kind, chunk) still to compute, at most config.max_chunks
    report: PrecomputeReport  # skipped counted, written at 0


def plan(*, path: Path, store: Store, config: PrecomputeConfig) -> Plan:
    """The chunks of each kind of the bundle at `path` (a version directory, resolved once by
    the caller) that the store has not recorded as done."""
    manifest = read_typed_manifest(path)
    version = manifest.bundle_version
    counts = {RADIO: manifest.entities["tracks"], RELATED: manifest.entities["artists"]}
    report = PrecomputeReport(version=version)
    todo: list[tuple[str, int]] = []
    for kind in (RELATED, RADIO):
        n_chunks = math.ceil(counts[kind] / config.chunk_size)
        done = store.chunks_done(version=version, task=task_name(kind, config))
        report.skipped[kind] = sum(
            _chunk_len(kind, c, counts, config) for c in done if c < n_chunks
        )
        report.written[kind] = 0
        todo += [(kind, c) for c in range(n_chunks) if c not in done]
        log(
            f"{kind}: {counts[kind]} items in {n_chunks} chunks of {config.chunk_size}, "
            f"{len(done)} chunks already done"
        )
    if config.max_chunks is not None:
        todo = todo[: config.max_chunks]
    return Plan(path=path, version=version, counts=counts, todo=todo, report=report)


def finish(plan: Plan, *, start: float) -> PrecomputeReport:
    """The plan's report, with its time and whether every item is now written."""
    report = plan.report
    report.seconds = time.perf_counter() - start
    report.complete = all(
        report.written[k] + report.skipped[k] == plan.counts[k] for k in (RADIO, RELATED)
    )
    return report


def precompute(*, bundles: Path, store: Store, config: PrecomputeConfig) -> PrecomputeReport:
    path = resolve_current(bundles)
    start = time.perf_counter()
    processes = config.processes or os.cpu_count() or 1
    # the pool forks before the store connects: a Cassandra session must not cross a fork
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(processes, initializer=_init_worker, initargs=(path, config)) as pool:
        work = plan(path=path, store=store, config=config)
        version, counts, todo, report = work.version, work.counts, work.todo, work.report
        log(
            f"precompute of bundle {version} into {store.url}: {len(todo)} chunks, {processes} processes"
        )
        last = time.perf_counter()
        total_items = sum(_chunk_len(k, c, counts, config) for k, c in todo)
        done_items = 0
        for kind, chunk, items in pool.imap_unordered(_compute_chunk, todo):
            store.put_many(
                kind=kind, version=list_key(kind, version=version, config=config), items=items
            )
            store.mark_done(
                version=version, task=task_name(kind, config), chunk=chunk, items=len(items)
            )
            report.written[kind] += len(items)
            done_items += len(items)
            now = time.perf_counter()
            if now - last >= 2.0:
                last = now
                rate = done_items / (now - start)
                eta = (total_items - done_items) / max(rate, 1e-9)
                log(
                    f"{done_items}/{total_items} lists ({100 * done_items / max(total_items, 1):.0f}%), "
                    f"{rate:,.0f}/s, about {eta:.0f}s left"
                )
    return finish(work, start=start)


def _chunk_len(kind: str, chunk: int, counts: dict[str, int], config: PrecomputeConfig) -> int:
    return max(0, min(config.chunk_size, counts[kind] - chunk * config.chunk_size))


_worker: tuple[LoadedBundle, PrecomputeConfig] | None = None


def _init_worker(path: Path, config: PrecomputeConfig) -> None:
    global _worker
    _worker = (load_for_precompute(path, config), config)


def _compute_chunk(task: tuple[str, int]) -> tuple[str, int, list[tuple[str, Ranked]]]:
    assert _worker is not None, "worker not initialised"
    loaded, config = _worker
    kind, chunk = task
    entity = "tracks" if kind == RADIO else "artists"
    ents = loaded.bundle.entities[entity]
    lo = chunk * config.chunk_size
    hi = min(lo + config.chunk_size, len(ents))
    return kind, chunk, compute_lists(loaded, kind=kind, rows=range(lo, hi), config=config)


# rows ranked at once: a batch's features take about rows × 2,500 candidates × 24 float32
BATCH_ROWS = 64


def compute_lists(
    loaded: LoadedBundle, *, kind: str, rows: Sequence[int], config: PrecomputeConfig
) -> list[tuple[str, Ranked]]:
    """The (id, list) of each of `rows` (track rows for RADIO, artist rows for RELATED): the
    lists the service computes one at a time (`compute_radio`, `related_artists`), ranked
    BATCH_ROWS rows at a time (`Scorer.rank_many`)."""
    check_kind(kind)
    entity = "tracks" if kind == RADIO else "artists"
    ents, scorer = loaded.bundle.entities[entity], loaded.scorers[entity]
    artist = loaded.bundle.tracks.artist
    assert artist is not None
    out: list[tuple[str, Ranked]] = []
    rows = list(rows)
    for lo in range(0, len(rows), BATCH_ROWS):
        seeds = rows[lo : lo + BATCH_ROWS]
        if kind == RADIO:
            batch = scorer.rank_many(
                seeds, scorer.n_items, per_source=config.radio_candidates_per_source
            ).capped(artist=artist, cap=config.radio_artist_cap, limit=config.radio_size)
        else:  # the size the service reads back from the store (neighbours.related)
            batch = scorer.rank_many(seeds, RELATED_SIZE)
        ids, scores, items = ents.ids_of(batch.rows), batch.scores.tolist(), batch.rows.tolist()
        bounds = batch.bounds.tolist()
        for i, row in enumerate(seeds):
            a, b = bounds[i], bounds[i + 1]
            out.append((ents.id_of(row), Ranked(ids=ids[a:b], scores=scores[a:b], rows=items[a:b])))
    return out


def load_for_precompute(path: Path, config: PrecomputeConfig) -> LoadedBundle:
    """The bundle as a precompute worker maps it (no checksums: the build verified them)."""
    return load(
        path, verify_checksums=False, candidates_per_source=config.candidates_per_source,
        search_k=config.search_k,
    )  # fmt: skip


def chunk_rows(kind: str, chunk: int, *, counts: dict[str, int], config: PrecomputeConfig) -> range:
    """The rows of chunk `chunk` of a kind."""
    lo = chunk * config.chunk_size
    return range(lo, lo + _chunk_len(kind, chunk, counts, config))
