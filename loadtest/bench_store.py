"""Benchmark: precompute into Cassandra, then cached radio-neighbour reads through the service.

    scripts/cassandra start
    PYTHONPATH=. python loadtest/bench_store.py [--tracks 100000 | --bundles DIR]
        [--store cassandra://127.0.0.1:9042/segue_bench] [--duration 15] [--connections 8]

1. A synthetic bundle (built here into a temporary directory unless --bundles is given).
2. `precompute` of every track's 250 radio neighbours and every artist's 20 related artists into
   a fresh keyspace: tracks/s of the whole job (compute + write), and separately the write rate
   alone (the same lists written again, no compute), which is what Cassandra takes.
3. `segue serve` (N workers) on that store, and in the same run with wrk: the cached read
   `/v1/tracks/{id}/radio-neighbours?limit=L` over random ids (every one a cache hit after the
   precompute), and the bare constant endpoint `/livez`; p50/p99 of each and their ratio.

The benchmark starts no Cassandra itself: start it first (scripts/cassandra start). It drops and
recreates the keyspace it is given. Figures go to stdout as `key=value` lines. Not a test.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from indexes.bundle import resolve_current
from loadtest.common import HOST, emit, free_port, log, random_ids, running
from loadtest.httpload import WrkResult, emit_wrk, run_wrk, wait_ready, write_lua, wrk_missing

RADIO = "/v1/tracks/{id}/radio-neighbours?limit={limit}"


def build(tracks: int, out: Path) -> None:
    from indexes.datasets.synthetic import generate_synthetic
    from indexes.pipeline import BuildConfig, build_bundle

    log(f"building a synthetic bundle of {tracks} tracks into {out}")
    build_bundle(generate_synthetic(n_tracks=tracks, seed=42), out=out, config=BuildConfig())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--bundles", type=Path, help="an existing bundles directory (with current)")
    p.add_argument("--tracks", type=int, default=100_000, help="synthetic tracks to build")
    p.add_argument("--store", default="cassandra://127.0.0.1:9042/segue_bench")
    p.add_argument("--processes", type=int, default=0, help="precompute processes (0: CPUs)")
    p.add_argument("--chunk-size", type=int, default=500)
    p.add_argument("--write-sample", type=int, default=20_000, help="lists in the write-only run")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--limit", type=int, default=50, help="items per radio-neighbours response")
    p.add_argument("--duration", type=float, default=15.0, help="seconds of each wrk run")
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--ids", type=int, default=10_000)
    args = p.parse_args(argv)
    if wrk_missing():
        return 2
    from service.precompute import precompute
    from service.settings import Settings
    from service.store.base import RADIO as RADIO_KIND
    from service.store.base import StoreUnavailable, parse_store_url
    from service.store.factory import open_store

    url = parse_store_url(args.store)
    if url.scheme == "cassandra":
        drop_keyspace(url.hosts, url.port, url.keyspace)
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        bundles = args.bundles
        if bundles is None:
            bundles = Path(tmp) / "bundles"
            build(args.tracks, bundles)
        directory = resolve_current(bundles)
        try:
            store = open_store(args.store)
            store.ping()
        except StoreUnavailable as e:
            print(f"{e}\nstart it first: scripts/cassandra start", file=sys.stderr)
            return 2
        config = Settings.defaults().precompute_config(
            processes=args.processes, chunk_size=args.chunk_size
        )
        try:
            report = precompute(bundles=bundles, store=store, config=config)
            log(report.summary())
            tracks, artists = report.written.get("radio", 0), report.written.get("related", 0)
            emit(
                precompute_tracks=tracks,
                precompute_artists=artists,
                precompute_s=report.seconds,
                precompute_tracks_per_s=tracks / report.seconds,
                processes=config.processes or os.cpu_count() or 1,
                store=store.url,
            )
            # the write rate alone: lists already computed, written again
            ids = random_ids(directory, n=args.write_sample, seed=7)
            version = report.version
            sample = []
            for key in ids:
                got = store.get(kind=RADIO_KIND, version=version, key=key)
                assert got is not None, key
                sample.append((key, got))
            start = time.perf_counter()
            for i in range(0, len(sample), 1000):
                store.put_many(kind=RADIO_KIND, version=version, items=sample[i : i + 1000])
            seconds = time.perf_counter() - start
            emit(write_only_lists=len(sample), write_only_s=seconds,
                 write_only_lists_per_s=len(sample) / seconds)  # fmt: skip
        finally:
            store.close()

        # cached reads through the service against the bare endpoint, one server, one run
        port = free_port()
        os.environ["SEGUE_STORE"] = args.store
        read_ids = random_ids(directory, n=args.ids, seed=11)
        ids_file = Path(tmp) / "ids.txt"
        ids_file.write_text("\n".join(read_ids) + "\n", encoding="utf-8")
        radio_lua = write_lua(
            Path(tmp), name="radio.lua", ids_file=ids_file,
            path_template=RADIO.replace("{limit}", str(args.limit)),
        )  # fmt: skip
        bare_lua = write_lua(Path(tmp), name="bare.lua", ids_file=None)
        with running(bundles=bundles, workers=args.workers, port=port) as server:
            wait_ready(server, port=port, timeout=300)
            base = f"http://{HOST}:{port}"

            def measure(path: str, lua: Path, seconds: float) -> WrkResult:
                return run_wrk(server=server, url=base + path, lua=lua, seconds=seconds,
                               connections=args.connections, threads=1)  # fmt: skip

            measure("/", radio_lua, args.warmup)
            radio = measure("/", radio_lua, args.duration)
            bare = measure("/livez", bare_lua, args.duration)
            emit_wrk(f"radio-neighbours?limit={args.limit}", radio)
            emit_wrk("livez", bare)
            emit(
                radio_over_bare_rps=radio.rps / bare.rps,
                radio_p50_ms=radio.p50_ms,
                radio_p99_ms=radio.p99_ms,
                bare_p50_ms=bare.p50_ms,
                bare_p99_ms=bare.p99_ms,
            )
    return 0


def drop_keyspace(hosts: tuple[str, ...], port: int, keyspace: str) -> None:
    from cassandra.cluster import Cluster

    cluster = Cluster(list(hosts), port=port, protocol_version=5)
    try:
        cluster.connect().execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
        log(f"dropped keyspace {keyspace} (a fresh start)")
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    sys.exit(main())
