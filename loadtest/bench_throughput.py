"""Benchmark: throughput and latency of the listener lists against a bare endpoint, per server.

    PYTHONPATH=. python loadtest/bench_throughput.py --bundles DIR [--store URL] [--workers 2]
        [--duration 20] [--connections 16] [--threads 1] [--warmup 10] [--half-duration 20]
        [--ids 2000] [--cold | --no-cold]

Reads every bundle file once first (`--no-preload` to skip: on this VM cold pages are reclaimed,
and a bundle evicted by other work makes the first queries wait on the disk), then starts one
`segue serve` (N uvicorn workers forked by gunicorn) on 127.0.0.1 on `--store` (SEGUE_STORE) with
room for every list in each worker's memory (SEGUE_LIST_CACHE_SIZE, unless set; the rendered
answers at their default budget, SEGUE_RESPONSE_CACHE_MB), and:

1. asks once for the similar tracks of each of `--ids` random track ids (their radio lists are
   computed and written to the store), then `--warmup` seconds of untimed load, so that every
   worker holds every list;
2. peak load, closed loop, with wrk (https://github.com/wg/wrk, Debian package `wrk`):
   `/v1/tracks/{id}/similar?limit=20` (the ensemble) and `/v1/tracks/{id}/radio-neighbours?limit=50`
   on a random id per request (a Lua script picks it from the list), then the constant `/livez`
   (same app, same middleware); requests/s, p50 and p99 of each, and each ratio to livez;
3. half load, open loop, of each list endpoint: a Python asyncio generator sends requests at a
   fixed rate of half the measured peak, each at its scheduled time whether or not earlier ones
   have finished, and measures latency from the scheduled time (wrk's closed loop would hide
   queueing: the coordinated omission that wrk2 corrects; wrk2 is not packaged in Debian);
4. with `--cold` (the default on Cassandra), a second server with no lists and no rendered
   answers in memory (SEGUE_LIST_CACHE_SIZE=0, SEGUE_RESPONSE_CACHE_MB=0), so that every similar
   request reads its list from the store:
   similar at peak and its own /livez.

The load generators run on the same machine as the server and share its cores; `cpu_s` figures
say how much CPU each side took. Figures go to stdout as `key=value` pairs, one
`figure=NAME ratio=...` line per target; progress and the servers' log go to stderr. Each server
is stopped at the end, also on error or Ctrl-C. Not a test.

Targets (issue 14): similar warm / livez >= 0.45, similar cold (Cassandra) / livez >= 0.2,
radio-neighbours warm / livez >= 0.4 with p99 <= 20 ms at half of its peak.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from indexes.bundle import resolve_current
from loadtest.common import HOST, Server, emit, free_port, log, random_ids, running
from loadtest.httpload import (
    CLK_TCK,
    Conn,
    WrkResult,
    cassandra_cpu_ticks,
    emit_wrk,
    environment,
    percentile,
    run_wrk,
    wait_ready,
    write_lua,
    wrk_missing,
)

SIMILAR = "/v1/tracks/{id}/similar?limit=20"
RADIO = "/v1/tracks/{id}/radio-neighbours?limit=50"
# the targets of issue 14, each a ratio to /livez of the same server in the same run
SIMILAR_WARM_TARGET = 0.45  # similar, the lists in the workers' memory
SIMILAR_COLD_TARGET = 0.2  # similar, every list read from the store (Cassandra)
RADIO_WARM_TARGET = 0.4  # radio-neighbours, the lists in memory
RADIO_P99_TARGET_MS = 20.0  # radio-neighbours at half of its peak


# --- half load: an open-loop generator ---------------------------------------------------------


@dataclass(frozen=True)
class OpenLoopResult:
    target_rps: float
    achieved_rps: float
    sent: int
    ok: int
    errors: int
    latencies_ms: list[float]  # of the answered requests, from their scheduled send time
    service_ms: list[float]  # the same from the moment the request was written
    start_lag_p99_ms: float  # how late the generator itself started requests
    connections: int


async def open_loop(
    *,
    port: int,
    paths: list[str],
    rate: float,
    seconds: float,
    max_requests: int,
    max_connections: int,
    timeout: float,
) -> OpenLoopResult:
    """Sends paths[i % len] at start + i / rate for `seconds` (at most `max_requests`).

    A request that finds every connection busy opens another (up to `max_connections`) or waits
    for one; that wait counts in its latency, which runs from the scheduled send time."""
    loop = asyncio.get_running_loop()
    n = max(1, min(max_requests, int(rate * seconds)))
    freed: asyncio.Queue[Conn] = asyncio.Queue()  # idle keep-alive connections
    opened = 0
    latencies: list[float] = []
    service: list[float] = []
    lags: list[float] = []
    errors = ok = 0

    async def acquire() -> Conn:
        nonlocal opened
        if not freed.empty():
            return freed.get_nowait()
        if opened < max_connections:
            opened += 1
            try:
                return await Conn.open(port=port)
            except BaseException:
                opened -= 1
                raise
        return await freed.get()

    async def one(i: int, scheduled: float) -> None:
        nonlocal errors, ok, opened
        lags.append(loop.time() - scheduled)
        conn: Conn | None = None
        try:
            conn = await acquire()
            written = loop.time()
            status, _ = await asyncio.wait_for(conn.get(paths[i % len(paths)]), timeout)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as e:
            errors += 1
            if errors <= 5:
                log(f"half load: request {i} failed: {e!r}")
            if conn is not None:  # a broken connection: drop it (acquire() counted it)
                conn.close()
                opened -= 1
            return
        now = loop.time()
        latencies.append((now - scheduled) * 1e3)
        service.append((now - written) * 1e3)
        ok += status == 200
        if status != 200:
            errors += 1
        freed.put_nowait(conn)

    start = loop.time() + 0.05
    tasks: list[asyncio.Task[None]] = []
    for i in range(n):
        scheduled = start + i / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, scheduled)))
    if tasks:
        await asyncio.wait(tasks, timeout=timeout + 5)
    elapsed = loop.time() - start
    for t in tasks:
        t.cancel()
    while not freed.empty():
        freed.get_nowait().close()
    return OpenLoopResult(
        target_rps=rate,
        achieved_rps=len(latencies) / elapsed if elapsed > 0 else 0.0,
        sent=len(tasks),
        ok=ok,
        errors=errors + sum(not t.done() for t in tasks),
        latencies_ms=latencies,
        service_ms=service,
        start_lag_p99_ms=percentile([x * 1e3 for x in lags], 99),
        connections=opened,
    )


# --- main --------------------------------------------------------------------------------------


def preload(directory: Path) -> int:
    """Reads every file of the bundle once (into the page cache); returns the bytes read."""
    total = 0
    for path in sorted(directory.iterdir()):
        if path.is_file():
            with path.open("rb") as f:
                while chunk := f.read(1 << 24):
                    total += len(chunk)
    return total


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--bundles", type=Path, required=True, help="bundles directory (with current)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--port", type=int, default=0, help="default: a free port")
    p.add_argument("--store", default=None, help="SEGUE_STORE of the servers (default: the env's)")
    p.add_argument("--duration", type=float, default=20.0, help="seconds of each wrk run")
    p.add_argument("--connections", type=int, default=16, help="wrk connections")
    p.add_argument("--threads", type=int, default=1, help="wrk threads (the cores are shared)")
    p.add_argument("--warmup", type=float, default=10.0, help="seconds of untimed wrk load first")
    p.add_argument("--half-duration", type=float, default=None, help="default: --duration")
    p.add_argument("--max-requests", type=int, default=200_000, help="cap of each half-load run")
    p.add_argument("--max-connections", type=int, default=256, help="cap of each half-load run")
    p.add_argument("--ids", type=int, default=2_000, help="random track ids to draw from")
    p.add_argument(
        "--cold",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also run a second server without the in-memory lists (every list a store read); "
        "default: when the store is Cassandra",
    )
    p.add_argument("--ready-timeout", type=float, default=300.0)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument(
        "--no-preload",
        dest="preload",
        action="store_false",
        help="do not read the bundle files once before the server starts (default: read them)",
    )
    args = p.parse_args(argv)
    if args.connections < args.threads or args.threads < 1 or args.workers < 1:
        p.error("need --workers >= 1, --threads >= 1 and --connections >= --threads")
    args.store = args.store or os.environ.get("SEGUE_STORE")
    if args.cold is None:
        args.cold = bool(args.store and args.store.startswith("cassandra://"))
    if args.half_duration is None:
        args.half_duration = args.duration
    return args


class Bench:
    """One server of the run: wrk and half-load runs against it, figures as ratios to its /livez."""

    def __init__(self, args: argparse.Namespace, *, server: Server, port: int, tmp: Path,
                 ids_file: Path) -> None:  # fmt: skip
        self.args, self.server, self.port = args, server, port
        self.base = f"http://{HOST}:{port}"
        self.tmp, self.ids_file = tmp, ids_file

    def lua(self, name: str, template: str | None) -> Path:
        if template is None:
            return write_lua(self.tmp, name=name, ids_file=None)
        return write_lua(self.tmp, name=name, ids_file=self.ids_file, path_template=template)

    def wrk(self, name: str, template: str | None, *, seconds: float | None = None) -> WrkResult:
        path = "/livez" if template is None else "/"
        return run_wrk(
            server=self.server, url=self.base + path, lua=self.lua(f"{name}.lua", template),
            seconds=seconds or self.args.duration, connections=self.args.connections,
            threads=self.args.threads,
        )  # fmt: skip

    def half_load(self, name: str, paths: list[str], *, peak: WrkResult) -> float:
        """An open-loop run at half of `peak`; emits its figures and returns its p99 (ms)."""
        rate = 0.5 * peak.rps
        if rate <= 0:
            log(f"{name}: no request completed at peak load: no half-load run")
            return float("nan")
        log(f"{name} half load: {rate:.0f} requests/s for {self.args.half_duration:.0f} s")
        half = asyncio.run(open_loop(
            port=self.port, paths=paths, rate=rate, seconds=self.args.half_duration,
            max_requests=self.args.max_requests, max_connections=self.args.max_connections,
            timeout=10.0,
        ))  # fmt: skip
        p99 = percentile(half.latencies_ms, 99)
        emit(
            endpoint=name, half_load_rps=half.target_rps, achieved_rps=half.achieved_rps,
            p50_ms=percentile(half.latencies_ms, 50), p90_ms=percentile(half.latencies_ms, 90),
            p99_ms=p99, max_ms=max(half.latencies_ms, default=float("nan")),
            from_write_p50_ms=percentile(half.service_ms, 50),
            from_write_p99_ms=percentile(half.service_ms, 99), sent=half.sent,
            errors=half.errors, connections=half.connections,
            generator_start_lag_p99_ms=half.start_lag_p99_ms,
        )  # fmt: skip
        return p99 if half.errors == 0 else float("inf")


def list_reads(port: int) -> dict[str, float]:
    """segue_list_cache_total of the server (all workers), by result (hit, miss) of the lists
    in memory, and of the rendered answers as rendered_hit, rendered_miss."""
    out = {"hit": 0.0, "miss": 0.0, "rendered_hit": 0.0, "rendered_miss": 0.0}
    text = asyncio.run(_body(port=port, path="/metrics")).decode()
    pattern = r'^segue_list_cache_total\{list="([\w-]+)",result="(\w+)"\} (\S+)$'
    for m in re.finditer(pattern, text, re.M):
        name = f"rendered_{m.group(2)}" if m.group(1) == "rendered" else m.group(2)
        out[name] = out.get(name, 0.0) + float(m.group(3))
    return out


async def _body(*, port: int, path: str) -> bytes:
    conn = await Conn.open(port=port)
    try:
        return (await conn.get(path))[1]
    finally:
        conn.close()


async def fill(*, port: int, paths: list[str], concurrency: int) -> int:
    """GET every path once (the lists are computed and written to the store); the errors."""
    queue = list(reversed(paths))
    errors = 0

    async def worker() -> None:
        nonlocal errors
        conn = await Conn.open(port=port)
        try:
            while queue:
                status, _ = await conn.get(queue.pop())
                errors += status != 200
        finally:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return errors


def figure(
    name: str, result: WrkResult, livez: WrkResult, *, target: float, **extra: object
) -> bool:
    """One figure line: the endpoint's rps as a ratio to /livez of the same server; its check."""
    ratio = result.rps / livez.rps if livez.rps > 0 else 0.0
    clean = result.non_2xx == 0 and result.socket_errors == 0
    ok = ratio >= target and clean
    emit(figure=name, ratio=ratio, target=target, ok=ok, rps=result.rps, livez_rps=livez.rps,
         p99_ms=result.p99_ms, non_2xx=result.non_2xx, **extra)  # fmt: skip
    return ok


def warm_server(args: argparse.Namespace, *, ids: list[str], tmp: Path, ids_file: Path) -> bool:
    """Lists in each worker's memory: similar and radio-neighbours at peak and at half load."""
    port = args.port or free_port()
    cache_size = os.environ.get("SEGUE_LIST_CACHE_SIZE") or str(len(set(ids)) + 1000)
    with environment(SEGUE_STORE=args.store, SEGUE_LIST_CACHE_SIZE=cache_size), \
            running(bundles=args.bundles, workers=args.workers, port=port) as server:  # fmt: skip
        emit(server="warm", store=os.environ.get("SEGUE_STORE", "(default)"),
             list_cache_size=cache_size)  # fmt: skip
        wait_ready(server, port=port, timeout=args.ready_timeout)
        bench = Bench(args, server=server, port=port, tmp=tmp, ids_file=ids_file)
        started = time.perf_counter()
        errors = asyncio.run(fill(port=port, paths=[SIMILAR.format(id=i) for i in set(ids)],
                                  concurrency=args.connections))  # fmt: skip
        emit(filled=len(set(ids)), fill_s=time.perf_counter() - started, fill_errors=errors)
        log(f"warm-up: {args.warmup:.0f} s of similar, untimed (every worker reads every list)")
        bench.wrk("similar", SIMILAR, seconds=args.warmup)
        emit(loadavg_1m=os.getloadavg()[0])
        before = list_reads(port)
        similar = bench.wrk("similar", SIMILAR)
        emit_wrk("similar", similar)
        radio = bench.wrk("radio", RADIO)
        emit_wrk("radio-neighbours", radio)
        after = list_reads(port)
        livez = bench.wrk("livez", None)
        emit_wrk("livez", livez)
        hits, misses = after["hit"] - before["hit"], after["miss"] - before["miss"]
        hit_ratio = hits / max(hits + misses, 1.0)
        # the answers sent as rendered before, of all list requests (the rest read their list)
        done = after["rendered_hit"] - before["rendered_hit"]
        rendered_ratio = done / max(done + after["rendered_miss"] - before["rendered_miss"], 1.0)
        emit(list_hit_ratio=round(hit_ratio, 3), rendered_hit_ratio=round(rendered_ratio, 3))
        ok = figure("similar_warm", similar, livez, target=SIMILAR_WARM_TARGET, hit_ratio=hit_ratio)
        half_similar = bench.half_load("similar", [SIMILAR.format(id=i) for i in ids], peak=similar)
        half_radio = bench.half_load("radio-neighbours", [RADIO.format(id=i) for i in ids],
                                     peak=radio)  # fmt: skip
        ok &= figure("radio_warm", radio, livez, target=RADIO_WARM_TARGET, hit_ratio=hit_ratio,
                     half_load_p99_ms=half_radio)  # fmt: skip
        emit(figure="radio_warm_p99_at_half_load", value_ms=half_radio,
             target_ms=RADIO_P99_TARGET_MS, ok=half_radio <= RADIO_P99_TARGET_MS)  # fmt: skip
        emit(figure="similar_warm_p99_at_half_load", value_ms=half_similar)
        return ok and half_radio <= RADIO_P99_TARGET_MS


def cold_server(args: argparse.Namespace, *, tmp: Path, ids_file: Path) -> bool:
    """No lists and no rendered answers in memory (SEGUE_LIST_CACHE_SIZE=0,
    SEGUE_RESPONSE_CACHE_MB=0): every similar request reads its list from the store (the warm
    server wrote them there)."""
    port = args.port or free_port()
    with environment(SEGUE_STORE=args.store, SEGUE_LIST_CACHE_SIZE="0",
                     SEGUE_RESPONSE_CACHE_MB="0"), \
            running(bundles=args.bundles, workers=args.workers, port=port) as server:  # fmt: skip
        emit(server="cold", store=os.environ.get("SEGUE_STORE", "(default)"), list_cache_size=0)
        wait_ready(server, port=port, timeout=args.ready_timeout)
        bench = Bench(args, server=server, port=port, tmp=tmp, ids_file=ids_file)
        bench.wrk("similar", SIMILAR, seconds=min(args.warmup, 5.0))  # connections, JIT-free
        store0 = cassandra_cpu_ticks()
        similar = bench.wrk("similar", SIMILAR)
        store1 = cassandra_cpu_ticks()
        emit_wrk("similar-cold", similar)
        livez = bench.wrk("livez", None)
        emit_wrk("livez", livez)
        cpu: dict[str, float] = {
            "server_cpu_ms_per_request": 1e3 * similar.server_cpu_s / max(similar.requests, 1),
            "wrk_cpu_ms_per_request": 1e3 * similar.wrk_cpu_s / max(similar.requests, 1),
        }
        if store0 is not None and store1 is not None:  # Cassandra on these cores: its share
            cpu["cassandra_cpu_ms_per_request"] = (
                1e3 * (store1 - store0) / CLK_TCK / max(similar.requests, 1)
            )
        return figure("similar_cold", similar, livez, target=SIMILAR_COLD_TARGET, **cpu)


def main(argv: list[str] | None = None) -> int:
    if wrk_missing():
        return 2
    args = parse_args(argv)
    directory = resolve_current(args.bundles)
    ids = random_ids(directory, n=args.ids, seed=args.seed)
    if args.preload:
        # a serving pod has had its bundle in the page cache for a while; a benchmark started
        # after other work may find it evicted (this VM reclaims cold pages), and then the first
        # queries wait on the disk, which is not what the targets are about
        started = time.perf_counter()
        n = preload(directory)
        emit(preload_mb=round(n / 1e6, 1), preload_s=round(time.perf_counter() - started, 2))
    emit(bundle=directory.name, workers=args.workers, cpus=os.cpu_count() or 0)
    for var in sorted(v for v in os.environ if v.startswith("SEGUE_")):
        emit(setting=var, value=os.environ[var])  # the workers read them too
    emit(generator="wrk", threads=args.threads, connections=args.connections, seconds=args.duration)
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp:
        ids_file = Path(tmp) / "ids.txt"
        ids_file.write_text("\n".join(ids) + "\n", encoding="utf-8")
        ok = warm_server(args, ids=ids, tmp=Path(tmp), ids_file=ids_file)
        if args.cold:
            ok &= cold_server(args, tmp=Path(tmp), ids_file=ids_file)
    emit(check="every_target", ok=ok)
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as e:
        log(f"interrupted ({str(e) or 'Ctrl-C'}); the server was stopped")
        sys.exit(130)
