"""Benchmark: the cost of authentication, similar tracks with SEGUE_AUTH=jwt against =off.

    PYTHONPATH=. python loadtest/bench_auth.py --bundles DIR [--workers 2] [--duration 8]
        [--rounds 3] [--warmup 10] [--connections 16] [--ids 2000]

Starts two `segue serve` on the same bundle and build, each with its own SQLite store and room
for every list in memory: one with SEGUE_AUTH=off, one with SEGUE_AUTH=jwt (an HS256 key made
for the run, the rate limiter on but far above the load). Each computes the similar tracks of
`--ids` random ids once (4 at a time), then wrk (one thread) warms it up with
`/v1/tracks/{id}/similar?limit=20` on those ids for `--warmup` seconds (every worker holds
every list), then runs
`--rounds` rounds of `--duration` seconds on each, alternating off, on, off, on... so that the
load of the rest of the machine falls on both alike. The "on" runs send
`Authorization: Bearer <token>` (scope catalog:read); a refused request would count as non-2xx.

Prints each run, `figure=auth_cpu_per_request` (the servers' CPU time per request, median of
the runs: less sensitive to the rest of the machine than requests/s) and
`figure=auth_cost ratio=<median on rps / median off rps>` (target >= 0.9).
Both servers run all along (each idle while the other is measured). Not a test.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from indexes.bundle import resolve_current
from loadtest.common import Server, emit, free_port, log, random_ids, running
from loadtest.httpload import emit_wrk, environment, run_wrk, wait_ready, write_lua, wrk_missing
from service.auth import Key, mint

SIMILAR = "/v1/tracks/{id}/similar?limit=20"
TARGET = 0.9  # within 10 %


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--bundles", type=Path, required=True, help="bundles directory (with current)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--duration", type=float, default=8.0, help="seconds of each measured run")
    p.add_argument("--rounds", type=int, default=3, help="measured runs of each server")
    p.add_argument("--warmup", type=float, default=10.0, help="seconds of untimed load, each")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--ids", type=int, default=500, help="random track ids to draw from")
    p.add_argument("--ready-timeout", type=float, default=300.0)
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args(argv)
    if not (1 <= args.rounds <= 20 and 1 <= args.duration <= 120 and 0 <= args.warmup <= 120):
        p.error("--rounds 1..20, --duration 1..120 s, --warmup 0..120 s")
    return args


def fill(*, port: int, ids: list[str], headers: dict[str, str] | None) -> int:
    """GET the similar tracks of every id once (each list is computed, written to the store and
    kept by the worker that served it); the number of answers other than 200."""

    def get(track: str) -> int:
        return http.get(SIMILAR.format(id=track), headers=headers).status_code

    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http, \
            concurrent.futures.ThreadPoolExecutor(4) as pool:  # fmt: skip
        return sum(status != 200 for status in pool.map(get, ids))


def serve(stack: contextlib.ExitStack, args: argparse.Namespace, *, port: int,
          **env: str) -> Server:  # fmt: skip
    """A server started with `env` (its SEGUE_* variables), stopped when `stack` closes."""
    with environment(**env):
        return stack.enter_context(running(bundles=args.bundles, workers=args.workers, port=port))


def main(argv: list[str] | None = None) -> int:
    if wrk_missing():
        return 2
    args = parse_args(argv)
    directory = resolve_current(args.bundles)
    ids = random_ids(directory, n=args.ids, seed=args.seed)
    secret = secrets.token_hex(32)
    key = Key(kid="bench", algorithm="HS256", key=secret.encode())
    token = mint(key, subject="bench", scopes=["catalog:read"], ttl_seconds=3600,
                 audience="segue", issuer="segue")  # fmt: skip
    emit(bundle=directory.name, workers=args.workers, cpus=os.cpu_count() or 0,
         connections=args.connections, seconds=args.duration, rounds=args.rounds)  # fmt: skip
    cache = str(len(set(ids)) + 1000)
    with tempfile.TemporaryDirectory(prefix="bench-auth-") as tmp:
        ids_file = Path(tmp) / "ids.txt"
        ids_file.write_text("\n".join(ids) + "\n", encoding="utf-8")
        lua = write_lua(Path(tmp), name="similar.lua", ids_file=ids_file, path_template=SIMILAR)
        off_port, on_port = free_port(), free_port()
        common = {"SEGUE_LIST_CACHE_SIZE": cache}
        with contextlib.ExitStack() as stack:
            off = serve(stack, args, port=off_port, SEGUE_AUTH="off",
                        SEGUE_STORE=f"sqlite:///{tmp}/off.db", **common)  # fmt: skip
            on = serve(
                stack, args, port=on_port, SEGUE_AUTH="jwt", SEGUE_AUTH_SECRETS=f"bench:{secret}",
                SEGUE_STORE=f"sqlite:///{tmp}/on.db", SEGUE_RATE_LIMIT_PER_SECOND="1000000",
                SEGUE_RATE_LIMIT_BURST="1000000", **common,
            )  # fmt: skip
            wait_ready(off, port=off_port, timeout=args.ready_timeout)
            wait_ready(on, port=on_port, timeout=args.ready_timeout)
            servers = {
                "off": (off, off_port, None),
                "on": (on, on_port, {"Authorization": f"Bearer {token}"}),
            }
            for name, (_, port, headers) in servers.items():
                started = time.perf_counter()
                errors = fill(port=port, ids=sorted(set(ids)), headers=headers)
                emit(auth=name, filled=len(set(ids)), fill_s=time.perf_counter() - started,
                     fill_errors=errors)  # fmt: skip
            rps: dict[str, list[float]] = {"off": [], "on": []}
            cpu_ms: dict[str, list[float]] = {"off": [], "on": []}  # server CPU per request
            clean = True
            for round_no in range(-1, args.rounds):  # round -1: the warm-up
                for name, (server, port, headers) in servers.items():
                    result = run_wrk(
                        server=server, url=f"http://127.0.0.1:{port}/", lua=lua,
                        seconds=args.warmup if round_no < 0 else args.duration,
                        connections=args.connections, threads=1, headers=headers,
                    )  # fmt: skip
                    clean &= result.non_2xx == 0 and result.socket_errors == 0
                    if round_no < 0:
                        log(f"warm-up {name}: {result.rps:.0f} requests/s")
                        continue
                    emit_wrk(f"similar-auth-{name}", result)
                    rps[name].append(result.rps)
                    cpu_ms[name].append(1e3 * result.server_cpu_s / max(result.requests, 1))
                    emit(auth=name, round=round_no + 1, rps=result.rps,
                         p99_ms=result.p99_ms, non_2xx=result.non_2xx)  # fmt: skip
    off_rps, on_rps = statistics.median(rps["off"]), statistics.median(rps["on"])
    off_cpu, on_cpu = statistics.median(cpu_ms["off"]), statistics.median(cpu_ms["on"])
    emit(figure="auth_cpu_per_request", on_ms=on_cpu, off_ms=off_cpu, ratio=on_cpu / off_cpu)
    ratio = on_rps / off_rps if off_rps > 0 else 0.0
    ok = ratio >= TARGET and clean
    emit(figure="auth_cost", ratio=ratio, target=TARGET, ok=ok, on_median_rps=on_rps,
         off_median_rps=off_rps, clean=clean)  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as e:
        log(f"interrupted ({str(e) or 'Ctrl-C'}); the servers were stopped")
        sys.exit(130)
