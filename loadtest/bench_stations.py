"""Benchmark: radio stations over HTTP, against a bare endpoint of the same server.

    PYTHONPATH=. python loadtest/bench_stations.py --bundles DIR [--store URL] [--workers 2]
        [--listeners 16] [--duration 20] [--max-ops 200000] [--half-duration 20]
        [--events 10,1000,10000]

Runs `segue precompute` into `--store` (SEGUE_STORE; `--no-precompute` to skip it: then the
first stations compute their seeds' lists, and the run measures that more than the stations),
starts one `segue serve` (N workers) on 127.0.0.1 on that store, then:

1. **peak**, closed loop, no think time: `--listeners` concurrent listeners, each on its own
   keep-alive connection, each creates a station from a random seed track, then repeats a cycle:
   pull 5 tracks (`GET .../tracks?limit=5`), send feedback on two of them (a random type, a fresh
   event id); every 20th cycle it starts a new station. Bounded by `--duration` and `--max-ops`.
   Ops/s over all operations, p50/p99 per operation (create, pull, feedback);
2. `/livez` of the same server with wrk (the stack's own limit), and the ratio of (1) to it;
3. **half load**, open loop: the same cycles on 4 × `--listeners` listeners, operation i sent at
   start + i / (half of peak ops/s) whether or not earlier ones have finished (one listener's
   operations stay in order), latency counted from the scheduled time;
4. **one long station** (`--events`): a single station fed pulls and feedback until it has seen
   each count of events; at each count, the size of its stored state (read from the store) and
   the median latency of 50 pulls and 50 feedbacks.

Every answer that is not 2xx counts as an error. Figures go to stdout as `key=value` lines, one
`figure=NAME` line per target of issue 14; progress and the server's log go to stderr. The
server is stopped at the end, also on error or Ctrl-C. Not a test.

Targets (issue 14): mixed station operations / livez >= 0.1 on Cassandra and >= 0.15 on SQLite,
0 errors, p99 <= 100 ms at half of peak; after 10,000 events the state size and the operation
latency within 2x of a station that has seen 10.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import statistics
import sys
import tempfile
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from indexes.bundle import resolve_current
from loadtest.common import emit, free_port, log, precompute, random_ids, running
from loadtest.httpload import (
    CLK_TCK,
    Conn,
    cassandra_cpu_ticks,
    emit_wrk,
    environment,
    percentile,
    run_wrk,
    server_cpu_ticks,
    wait_ready,
    write_lua,
    wrk_missing,
)

MIXED_TARGET = {"cassandra": 0.1, "sqlite": 0.15}  # station operations / livez
P99_TARGET_MS = 100.0  # at half of peak
GROWTH_TARGET = 2.0  # after 10,000 events against after 10
PULL = 5
FEEDBACKS_PER_PULL = 2
CYCLES_PER_STATION = 20
KINDS = ("thumbs_up", "thumbs_down", "skip", "completed")


class OpError(RuntimeError):
    pass


@dataclass
class Tally:
    """Latencies (ms) per operation and the errors seen."""

    ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: int = 0
    first_errors: list[str] = field(default_factory=list)

    def error(self, message: str) -> None:
        self.errors += 1
        if len(self.first_errors) < 5:
            self.first_errors.append(message)
            log(f"error: {message}")

    @property
    def ops(self) -> int:
        return sum(len(v) for v in self.ms.values())


class Listener:
    """One listener on one connection: create, then cycles of a pull and feedback."""

    def __init__(self, *, conn: Conn, port: int, rng: random.Random, seeds: list[str],
                 user: str) -> None:  # fmt: skip
        self.conn, self.port, self.rng, self.seeds, self.user = conn, port, rng, seeds, user
        self.station: str | None = None
        self.cycle = 0
        self.pending: list[str] = []  # tracks pulled and not yet given feedback

    def next_op(self) -> tuple[str, str, str, bytes | None]:
        """(operation, method, path, body) of the listener's next operation."""
        if self.station is None or (not self.pending and self.cycle >= CYCLES_PER_STATION):
            seed = self.rng.choice(self.seeds)
            body = {"user_id": self.user, "tracks": [seed]}
            return "create", "POST", "/v1/stations", json.dumps(body).encode()
        if self.pending:
            track = self.pending.pop()
            body = {"event_id": uuid.uuid4().hex, "track_id": track,
                    "type": self.rng.choice(KINDS)}  # fmt: skip
            return (
                "feedback",
                "POST",
                f"/v1/stations/{self.station}/feedback",
                json.dumps(body).encode(),
            )
        return "pull", "GET", f"/v1/stations/{self.station}/tracks?limit={PULL}", None

    def took(self, op: str, status: int, body: bytes) -> None:
        """Reads the answer of `op` into the listener's state; OpError when it is not 2xx."""
        if status // 100 != 2:
            raise OpError(f"{op}: HTTP {status}: {body[:200]!r}")
        if op == "create":
            self.station, self.cycle, self.pending = json.loads(body)["id"], 0, []
        elif op == "pull":
            items = [i["id"] for i in json.loads(body)["items"]]
            self.pending = self.rng.sample(items, min(FEEDBACKS_PER_PULL, len(items)))
            self.cycle += 1

    async def step(self, tally: Tally, *, scheduled: float | None = None) -> None:
        op, method, path, body = self.next_op()
        loop = asyncio.get_running_loop()
        start = loop.time() if scheduled is None else scheduled
        try:
            status, answer = await asyncio.wait_for(self.conn.request(method, path, body), 10.0)
            self.took(op, status, answer)
        except (OpError, OSError, TimeoutError, ValueError, KeyError) as e:
            tally.error(f"{op} {path}: {e!r}")
            if not isinstance(e, OpError):  # the connection is in an unknown state: a new one
                self.conn.close()
                self.conn = await Conn.open(port=self.port)
            self.station = None if op == "create" else self.station
            return
        tally.ms[op].append((loop.time() - start) * 1e3)


async def open_listeners(n: int, *, port: int, seeds: list[str], seed: int) -> list[Listener]:
    out = []
    for i in range(n):
        conn = await Conn.open(port=port)
        out.append(Listener(conn=conn, port=port, rng=random.Random(seed * 1000 + i),
                            seeds=seeds, user=f"bench-{seed}-{i}"))  # fmt: skip
    return out


async def peak(*, port: int, seeds: list[str], listeners: int, seconds: float, max_ops: int,
               seed: int) -> tuple[Tally, float]:  # fmt: skip
    """Closed loop: each listener sends its next operation as soon as the last one answered."""
    crowd = await open_listeners(listeners, port=port, seeds=seeds, seed=seed)
    tally = Tally()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds

    async def run(listener: Listener) -> None:
        while loop.time() < deadline and tally.ops + tally.errors < max_ops:
            await listener.step(tally)

    started = loop.time()
    await asyncio.gather(*(run(x) for x in crowd))
    elapsed = loop.time() - started
    for x in crowd:
        x.conn.close()
    return tally, elapsed


async def half_load(*, port: int, seeds: list[str], listeners: int, rate: float, seconds: float,
                    max_ops: int, seed: int) -> tuple[Tally, float]:  # fmt: skip
    """Open loop: operation i at start + i / rate, on listener i % listeners, in its order."""
    crowd = await open_listeners(listeners, port=port, seeds=seeds, seed=seed)
    locks = [asyncio.Lock() for _ in crowd]
    tally = Tally()
    loop = asyncio.get_running_loop()
    n = max(1, min(max_ops, int(rate * seconds)))

    async def one(i: int, scheduled: float) -> None:
        async with locks[i % len(crowd)]:
            await crowd[i % len(crowd)].step(tally, scheduled=scheduled)

    start = loop.time() + 0.05
    tasks = []
    for i in range(n):
        scheduled = start + i / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, scheduled)))
    await asyncio.wait(tasks, timeout=30)
    elapsed = loop.time() - start
    for t in tasks:
        if not t.done():
            t.cancel()
            tally.error("an operation still unanswered 30 s after the last was sent")
    for x in crowd:
        x.conn.close()
    return tally, elapsed


def emit_ops(name: str, tally: Tally, elapsed: float, **extra: object) -> None:
    for op, ms in sorted(tally.ms.items()):
        emit(run=name, op=op, count=len(ms), p50_ms=percentile(ms, 50), p99_ms=percentile(ms, 99),
             max_ms=max(ms))  # fmt: skip
    everything = [x for ms in tally.ms.values() for x in ms]
    emit(run=name, op="all", ops=tally.ops, ops_per_s=tally.ops / elapsed if elapsed else 0.0,
         p50_ms=percentile(everything, 50), p99_ms=percentile(everything, 99),
         errors=tally.errors, seconds=elapsed, **extra)  # fmt: skip


def state_bytes(store_url: str, station_id: str) -> int:
    """The size of the station's state as the store holds it."""
    from service.settings import Settings
    from service.store.factory import open_store

    store = open_store(store_url, options=Settings.defaults().store_options())
    try:
        stored = store.get_station(station_id=station_id)
        if stored is None:
            raise RuntimeError(f"station {station_id} is not in {store_url}")
        return len(stored.state.encode())
    finally:
        store.close()


async def long_station(*, port: int, seeds: list[str], counts: list[int], store_url: str,
                       seed: int) -> list[dict[str, float]]:  # fmt: skip
    """One station fed events until each of `counts`; its state size and latencies there."""
    (listener,) = await open_listeners(1, port=port, seeds=seeds, seed=seed + 7)
    listener.rng.seed(seed)
    tally = Tally()
    events = logged = 0
    out = []
    await listener.step(tally)  # create
    station = listener.station
    assert station is not None, "could not create the long station"
    listener.cycle = -(10**9)  # never starts another station
    for count in counts:
        steps = 0
        while events < count:
            before = len(tally.ms["feedback"])
            await listener.step(tally)
            events += len(tally.ms["feedback"]) - before
            steps += 1
            if tally.errors > 20:
                raise RuntimeError(f"the long station failed: {tally.first_errors}")
            if steps > 10 * count:  # pulls that return nothing: the station ran dry
                raise RuntimeError(f"the long station ran dry after {events} events")
            if events // 1000 > logged:
                logged = events // 1000
                log(f"long station: {events} events")
        timed = Tally()
        while len(timed.ms["feedback"]) < 50 or len(timed.ms["pull"]) < 50:
            await listener.step(timed)
        events += len(timed.ms["feedback"])
        size = state_bytes(store_url, station)
        row = {"events": count, "state_bytes": size,
               "pull_p50_ms": statistics.median(timed.ms["pull"]),
               "feedback_p50_ms": statistics.median(timed.ms["feedback"])}  # fmt: skip
        emit(run="long_station", **row)
        out.append(row)
    listener.conn.close()
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--bundles", type=Path, required=True, help="bundles directory (with current)")
    p.add_argument("--store", default=None, help="SEGUE_STORE of the server (default: a new "
                   "SQLite file in a temporary directory)")  # fmt: skip
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--listeners", type=int, default=16, help="concurrent listeners at peak")
    p.add_argument("--duration", type=float, default=20.0, help="seconds of the peak run")
    p.add_argument("--half-duration", type=float, default=None, help="default: --duration")
    p.add_argument("--max-ops", type=int, default=200_000, help="cap of each run's operations")
    p.add_argument("--events", default="10,1000,10000",
                   help="event counts of the long station ('' to skip it)")  # fmt: skip
    p.add_argument("--livez-seconds", type=float, default=10.0)
    p.add_argument("--precompute", action=argparse.BooleanOptionalAction, default=True,
                   help="write every radio list into the store first (default: on)")  # fmt: skip
    p.add_argument("--ready-timeout", type=float, default=300.0)
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args(argv)
    if args.listeners < 1 or args.workers < 1:
        p.error("need --listeners >= 1 and --workers >= 1")
    args.half_duration = args.half_duration or args.duration
    args.counts = [int(x) for x in args.events.split(",") if x.strip()]
    return args


def main(argv: list[str] | None = None) -> int:
    if wrk_missing():
        return 2
    args = parse_args(argv)
    directory = resolve_current(args.bundles)
    seeds = random_ids(directory, n=500, seed=args.seed)
    with tempfile.TemporaryDirectory(prefix="bench-stations-") as tmp:
        store = args.store or os.environ.get("SEGUE_STORE") or f"sqlite:///{tmp}/store.db"
        kind = "cassandra" if store.startswith("cassandra://") else "sqlite"
        port = free_port()
        emit(bundle=directory.name, workers=args.workers, cpus=os.cpu_count() or 0, store=store,
             listeners=args.listeners, seconds=args.duration)  # fmt: skip
        if args.precompute:
            precompute(bundles=args.bundles, store=store)
        with environment(SEGUE_STORE=store), \
                running(bundles=args.bundles, workers=args.workers, port=port) as server:  # fmt: skip
            wait_ready(server, port=port, timeout=args.ready_timeout)
            # a short untimed run: connections, the lists of the first seeds, the store's caches
            asyncio.run(peak(port=port, seeds=seeds, listeners=args.listeners, seconds=3.0,
                             max_ops=args.max_ops, seed=args.seed + 1))  # fmt: skip
            cpu0, self0 = server_cpu_ticks(server.pid), resource.getrusage(resource.RUSAGE_SELF)
            store0 = cassandra_cpu_ticks() if kind == "cassandra" else None
            tally, elapsed = asyncio.run(peak(
                port=port, seeds=seeds, listeners=args.listeners, seconds=args.duration,
                max_ops=args.max_ops, seed=args.seed,
            ))  # fmt: skip
            self1 = resource.getrusage(resource.RUSAGE_SELF)
            server_cpu = (server_cpu_ticks(server.pid) - cpu0) / CLK_TCK
            client_cpu = (self1.ru_utime + self1.ru_stime) - (self0.ru_utime + self0.ru_stime)
            cpu = {"server_cpu_s": server_cpu, "client_cpu_s": client_cpu}
            if store0 is not None and (store1 := cassandra_cpu_ticks()) is not None:
                cpu["cassandra_cpu_s"] = (store1 - store0) / CLK_TCK
                cpu["cassandra_cpu_ms_per_op"] = 1e3 * cpu["cassandra_cpu_s"] / max(tally.ops, 1)
            cpu["server_cpu_ms_per_op"] = 1e3 * server_cpu / max(tally.ops, 1)
            emit_ops("peak", tally, elapsed, **cpu)
            lua = write_lua(Path(tmp), name="livez.lua", ids_file=None)
            livez = run_wrk(server=server, url=f"http://127.0.0.1:{port}/livez", lua=lua,
                            seconds=args.livez_seconds, connections=16, threads=1)  # fmt: skip
            emit_wrk("livez", livez)
            rate = tally.ops / elapsed if elapsed else 0.0
            ratio = rate / livez.rps if livez.rps else 0.0
            ok = ratio >= MIXED_TARGET[kind] and tally.errors == 0
            emit(figure=f"stations_mixed_{kind}", ratio=ratio, target=MIXED_TARGET[kind], ok=ok,
                 ops_per_s=rate, livez_rps=livez.rps, errors=tally.errors)  # fmt: skip
            half, half_elapsed = asyncio.run(half_load(
                port=port, seeds=seeds, listeners=4 * args.listeners, rate=max(rate / 2, 1.0),
                seconds=args.half_duration, max_ops=args.max_ops, seed=args.seed + 2,
            ))  # fmt: skip
            emit_ops("half", half, half_elapsed, target_ops_per_s=rate / 2)
            p99 = percentile([x for ms in half.ms.values() for x in ms], 99)
            p99_ok = p99 <= P99_TARGET_MS and half.errors == 0
            emit(figure=f"stations_p99_at_half_load_{kind}", value_ms=p99,
                 target_ms=P99_TARGET_MS, ok=p99_ok, errors=half.errors)  # fmt: skip
            ok &= p99_ok
            if args.counts:
                rows = asyncio.run(long_station(port=port, seeds=seeds, counts=args.counts,
                                                store_url=store, seed=args.seed))  # fmt: skip
                first, last = rows[0], rows[-1]
                for key in ("state_bytes", "pull_p50_ms", "feedback_p50_ms"):
                    growth = last[key] / first[key] if first[key] else float("inf")
                    good = growth <= GROWTH_TARGET
                    emit(figure=f"long_station_{key}_growth", events_from=first["events"],
                         events_to=last["events"], ratio=growth, target=GROWTH_TARGET, ok=good)  # fmt: skip
                    ok &= good
    emit(check="every_target", ok=ok)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
