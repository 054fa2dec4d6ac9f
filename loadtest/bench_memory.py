"""Benchmark: memory and start-up time of each worker of `segue serve` over one bundle.

    PYTHONPATH=. python loadtest/bench_memory.py --bundles DIR [--workers 4] [--port P]
        [--warmup 4000] [--ready-timeout 300] [--top-mappings 5] [--precomputed-rows N]

Starts `segue serve` (N uvicorn worker processes forked by gunicorn) on 127.0.0.1, finds the
workers (the children of the server process, from /proc), and measures for each:

- ready time: a keep-alive connection is pinned to every worker (the worker that accepted it is
  found by the socket inode, /proc/net/tcp against /proc/PID/fd) and `/readyz` is polled on it;
  the worker is ready at its first 200. `ready_s` counts from the worker process's start
  (/proc/PID/stat), `since_start_s` from the server's start. The times of the "serving bundle"
  lines of the server's log (one per worker, without a pid) are printed as a cross-check.
- memory, after a warm-up of `/v1/tracks/{id}/similar` requests on random ids spread evenly over
  the workers (with `--precomputed-rows N`: the first N tracks, whose lists a partial
  `segue precompute` wrote into SEGUE_STORE first, so the workers read them as a deployment's
  do, instead of computing each on a miss): USS (Private_Clean + Private_Dirty) and PSS from /proc/PID/smaps_rollup, and the
  largest private mappings from /proc/PID/smaps.

Figures go to stdout as `key=value` pairs, one line each; progress and the server's log go to
stderr. MB = 10^6 bytes. The server is stopped at the end, also on error or Ctrl-C. Not a test.

Targets: USS <= 100 MB per worker; the PSS of all workers <= bundle size + workers x 100 MB; every
worker ready <= 2 s after its process started.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from indexes.bundle import resolve_current
from indexes.bundle.read import read_typed_manifest
from loadtest.common import (
    HOST,
    PRECOMPUTE_CHUNK,
    Server,
    emit,
    first_rows_ids,
    free_port,
    log,
    precompute,
    random_ids,
    running,
)

MB = 1e6
USS_LIMIT_MB = 100.0
READY_LIMIT_S = 2.0
SERVING_LINE = "serving bundle "
STARTED_LINE = re.compile(r"Started server process \[(\d+)\]")
LOG_SLACK_S = 0.05  # a worker logs "serving bundle" just after /readyz turned 200
CLK_TCK = os.sysconf("SC_CLK_TCK")


def started_servers(server: Server) -> dict[int, float]:
    """pid -> monotonic time of uvicorn's "Started server process [PID]" line: the worker
    has imported the app and is about to run its startup (the bundle loads after it)."""
    out: dict[int, float] = {}
    for t, line in server.matching("Started server process"):
        m = STARTED_LINE.search(line)
        if m:
            out[int(m.group(1))] = t
    return out


# --- /proc -------------------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(FileNotFoundError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(FileNotFoundError):
                out += [
                    int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()
                ]
    return out


def worker_pids(server_pid: int) -> list[int]:
    """The uvicorn workers: the children of `segue serve` (gunicorn's arbiter forks them)."""
    return children(server_pid)


def start_ticks(pid: int) -> int:
    """Process start time in clock ticks since boot (/proc/PID/stat field 22)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[19])


def socket_owner(*, server_port: int, client_port: int, pids: list[int]) -> int | None:
    """The process among `pids` that holds the server side of the loopback connection."""
    want_local = f"0100007F:{server_port:04X}"
    want_remote = f"0100007F:{client_port:04X}"
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        parts = line.split()
        if parts[1] == want_local and parts[2] == want_remote:
            inode = parts[9]
            break
    if inode is None or inode == "0":
        return None
    target = f"socket:[{inode}]"
    for pid in pids:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError, PermissionError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                        return pid
    return None


def smaps_rollup(pid: int) -> dict[str, int]:
    """The fields of /proc/PID/smaps_rollup, in bytes."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, rest = line.partition(":")
        value = rest.split()
        if len(value) == 2 and value[1] == "kB":
            out[key] = int(value[0]) * 1024
    return out


@dataclass
class Mapping:
    name: str
    private: int = 0  # bytes, Private_Clean + Private_Dirty
    rss: int = 0
    pss: int = 0


def mappings(pid: int) -> dict[str, Mapping]:
    """/proc/PID/smaps added up by mapped file (anonymous mappings as `[anon]`)."""
    out: dict[str, Mapping] = {}
    current: Mapping | None = None
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split(None, 5)
        if head and "-" in head[0] and not head[0].endswith(":"):
            name = head[5].strip() if len(head) == 6 else "[anon]"
            current = out.setdefault(name, Mapping(name))
            continue
        if current is None or len(head) != 3 or head[2] != "kB":
            continue
        value = int(head[1]) * 1024
        if head[0] in ("Private_Clean:", "Private_Dirty:"):
            current.private += value
        elif head[0] == "Rss:":
            current.rss += value
        elif head[0] == "Pss:":
            current.pss += value
    return out


def bundle_size(directory: Path) -> int:
    return sum(e.stat().st_size for e in os.scandir(directory) if e.is_file())


# --- HTTP --------------------------------------------------------------------------------------


def get(conn: http.client.HTTPConnection, path: str) -> tuple[int, bytes]:
    conn.request("GET", path)
    response = conn.getresponse()
    return response.status, response.read()


@dataclass
class Worker:
    pid: int
    started_s: float  # process start, seconds after the server process started
    conn: http.client.HTTPConnection | None = None
    last_503: float | None = None  # monotonic send time of the last "not ready" answer
    ready_at: float | None = None  # monotonic time the first 200 from /readyz arrived
    polls: int = 0
    rollup: dict[str, int] = field(default_factory=dict)


def pin_connection(
    *, port: int, workers: dict[int, Worker], timeout: float
) -> tuple[http.client.HTTPConnection, int] | int:
    """Opens a connection, sends /readyz, and finds the worker that accepted it.

    Returns the connection and that worker's pid, or 0 if no worker listens yet (refused), or
    1 if the connection went to a worker that already has one (or to none of them)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        sent = time.monotonic()
        status, _ = get(conn, "/readyz")
        received = time.monotonic()
        assert conn.sock is not None
        client_port = conn.sock.getsockname()[1]
        owner = socket_owner(server_port=port, client_port=client_port, pids=list(workers))
    except (OSError, http.client.HTTPException):
        # refused: uvicorn's workers, not the parent, call listen() on the shared socket
        conn.close()
        return 0
    if owner is None or workers[owner].conn is not None:
        conn.close()
        return 1
    _note(workers[owner], status=status, sent=sent, received=received)
    return conn, owner


def _note(worker: Worker, *, status: int, sent: float, received: float) -> None:
    worker.polls += 1
    if status == 200 and worker.ready_at is None:
        worker.ready_at = received
    elif status != 200:
        worker.last_503 = sent


def wait_ready(
    server: Server, *, workers: int, port: int, timeout: float, poll: float
) -> dict[int, Worker]:
    """Polls /readyz on one pinned connection per worker until every worker answered 200."""
    found: dict[int, Worker] = {}
    deadline = time.monotonic() + timeout
    base_ticks: int | None = None
    attempts = 0
    while time.monotonic() < deadline:
        server.check_alive()
        if base_ticks is None:
            base_ticks = start_ticks(server.pid)
        for pid in worker_pids(server.pid):
            if pid not in found:
                with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                    started = (start_ticks(pid) - base_ticks) / CLK_TCK
                    found[pid] = Worker(pid=pid, started_s=started)
                    log(f"worker pid {pid} started at +{started:.2f}s")
        if len(found) > workers:
            raise RuntimeError(f"{len(found)} worker processes for --workers {workers}")
        unpinned = [w for w in found.values() if w.conn is None and w.ready_at is None]
        if len(found) == workers and unpinned and attempts < 10_000:
            pinned = pin_connection(port=port, workers=found, timeout=min(5.0, timeout))
            if isinstance(pinned, tuple):
                conn, owner = pinned
                found[owner].conn = conn
                log(f"connection {attempts + 1} pinned to worker pid {owner}")
            attempts += pinned != 0  # count answered connections only
        for w in found.values():
            if w.conn is not None and w.ready_at is None:
                sent = time.monotonic()
                try:
                    status, _ = get(w.conn, "/readyz")
                except (OSError, http.client.HTTPException) as e:
                    log(f"worker pid {w.pid}: /readyz failed ({e!r}); pinning a new connection")
                    w.conn.close()
                    w.conn = None
                    continue
                _note(w, status=status, sent=sent, received=time.monotonic())
                if w.ready_at is not None:
                    log(f"worker pid {w.pid} ready at +{w.ready_at - server.started:.3f}s")
        if len(found) == workers and all(w.ready_at is not None for w in found.values()):
            return found
        time.sleep(poll)
    missing = [w.pid for w in found.values() if w.ready_at is None]
    raise TimeoutError(
        f"not every worker was ready within {timeout:.0f} s ({len(found)} found, not ready: {missing})"
    )


def warm_up(
    found: dict[int, Worker], *, port: int, ids: list[str], seconds: float
) -> tuple[int, int]:
    """Sends /v1/tracks/{id}/similar for each id, round robin over the pinned connections.

    Returns (requests, answers with status 200); stops after `seconds`."""
    workers = list(found.values())
    deadline = time.monotonic() + seconds
    sent = ok = 0
    for i, track_id in enumerate(ids):
        if time.monotonic() > deadline:
            log(f"warm-up stopped after {seconds:.0f} s")
            break
        w = workers[i % len(workers)]
        if w.conn is None:
            w.conn = http.client.HTTPConnection(HOST, port, timeout=10)
        try:
            status, _ = get(w.conn, f"/v1/tracks/{track_id}/similar?limit=20")
        except (OSError, http.client.HTTPException) as e:
            # the server closed an idle keep-alive connection: a new one may reach another worker
            log(f"warm-up request failed ({e!r}); reconnecting")
            w.conn.close()
            w.conn = None
            status = 0
        sent += 1
        ok += status == 200
    return sent, ok


# --- main --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--bundles", type=Path, required=True, help="bundles directory (with current)")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--port", type=int, default=0, help="default: a free port")
    p.add_argument(
        "--warmup", type=int, default=4000,
        help="similar requests after readiness, spread over the workers (USS counts bundle pages "
        "only that worker has touched: they leave it as the workers touch the same hot pages)",
    )  # fmt: skip
    p.add_argument("--warmup-seconds", type=float, default=240.0, help="time cap of the warm-up")
    p.add_argument(
        "--precomputed-rows", type=int, default=0,
        help="first run `segue precompute` (into SEGUE_STORE) over the related artists and the "
        "radio lists of the first N track rows, and warm up on those N tracks in a random order, "
        "each once: the lists come from the store, as in a deployment, instead of being computed "
        "on each miss (default 0: random ids, lists computed on a miss)",
    )  # fmt: skip
    p.add_argument("--ready-timeout", type=float, default=300.0)
    p.add_argument("--poll", type=float, default=0.02, help="seconds between /readyz polls")
    p.add_argument("--top-mappings", type=int, default=5, help="largest private mappings shown")
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args(argv)
    if args.workers < 1:
        p.error("--workers must be at least 1")

    directory = resolve_current(args.bundles)
    size = bundle_size(directory)
    if args.precomputed_rows:
        store = os.environ.get("SEGUE_STORE")
        if not store:
            p.error("--precomputed-rows needs SEGUE_STORE (the store the server reads)")
        artists = read_typed_manifest(directory).entities["artists"]
        chunks = -(-artists // PRECOMPUTE_CHUNK) + -(-args.precomputed_rows // PRECOMPUTE_CHUNK)
        precompute(bundles=args.bundles, store=store, max_chunks=chunks)
        ids = first_rows_ids(directory, n=args.precomputed_rows, seed=args.seed)[: args.warmup]
    else:
        ids = random_ids(directory, n=args.warmup, seed=args.seed)
    port = args.port or free_port()
    emit(workers=args.workers, bundle=directory.name, cpus=os.cpu_count() or 0)
    for var in sorted(v for v in os.environ if v.startswith("SEGUE_")):
        emit(setting=var, value=os.environ[var])  # the workers read them too
    with running(bundles=args.bundles, workers=args.workers, port=port) as server:
        found = wait_ready(
            server, workers=args.workers, port=port, timeout=args.ready_timeout, poll=args.poll
        )
        log(f"all {args.workers} workers ready; warm-up: {len(ids)} similar requests")
        t = time.monotonic()
        sent, ok = warm_up(found, port=port, ids=ids, seconds=args.warmup_seconds)
        warm_seconds = time.monotonic() - t
        for w in found.values():
            if w.conn is not None:
                w.conn.close()
        time.sleep(0.5)
        report(
            server,
            found=found,
            directory=directory,
            size=size,
            top=args.top_mappings,
            warmup=(sent, ok, warm_seconds),
        )
    return 0


@dataclass(frozen=True)
class Ready:
    at: float  # monotonic
    how: str  # "log": the time of its "serving bundle" line; "probe": its first 200
    bracket: float  # width of the interval the probes put the moment in


def ready_times(server: Server, workers: list[Worker]) -> dict[int, Ready]:
    """When each worker became ready, as precisely as the evidence allows.

    The probes put the moment in (lower, upper]: lower is the last "not ready" answer (or the
    worker's "Started server process" line: it cannot serve a bundle before), upper the first
    200. The "serving bundle" lines carry no pid, so each worker, narrowest upper bound first,
    takes the earliest unclaimed line inside its interval; with none, the probe's upper bound."""
    imported = started_servers(server)
    lines = sorted([t for t, _ in server.matching(SERVING_LINE)])
    out: dict[int, Ready] = {}
    for w in sorted(workers, key=lambda w: w.ready_at or 0.0):
        assert w.ready_at is not None
        bounds = [t for t in (w.last_503, imported.get(w.pid)) if t is not None]
        lower = max(bounds) if bounds else server.started + w.started_s
        inside = [t for t in lines if lower <= t <= w.ready_at + LOG_SLACK_S]
        if inside:
            lines.remove(inside[0])
            out[w.pid] = Ready(at=inside[0], how="log", bracket=w.ready_at - lower)
        else:
            out[w.pid] = Ready(at=w.ready_at, how="probe", bracket=w.ready_at - lower)
    return out


def report(
    server: Server,
    *,
    found: dict[int, Worker],
    directory: Path,
    size: int,
    top: int,
    warmup: tuple[int, int, float],
) -> None:
    prefix = str(directory) + "/"
    workers = sorted(found.values(), key=lambda w: w.started_s)
    when = ready_times(server, workers)
    imported = started_servers(server)
    ready: list[float] = []
    uss: list[float] = []
    uss_outside: list[float] = []  # USS without the bundle's pages that only this worker maps
    pss: list[float] = []
    for i, w in enumerate(workers):
        r = smaps_rollup(w.pid)
        maps = mappings(w.pid)
        in_bundle = [m for m in maps.values() if m.name.startswith(prefix)]
        began = server.started + w.started_s  # the worker process started
        since_start = when[w.pid].at - server.started
        ready_s = when[w.pid].at - began
        import_s = imported[w.pid] - began if w.pid in imported else float("nan")
        ready.append(ready_s)
        uss.append((r.get("Private_Clean", 0) + r.get("Private_Dirty", 0)) / MB)
        uss_bundle = sum(m.private for m in in_bundle) / MB
        uss_outside.append(uss[-1] - uss_bundle)
        pss.append(r.get("Pss", 0) / MB)
        emit(
            worker=i,
            pid=w.pid,
            uss_mb=uss[-1],
            uss_bundle_mb=uss_bundle,
            pss_mb=pss[-1],
            rss_mb=r.get("Rss", 0) / MB,
            pss_anon_mb=r.get("Pss_Anon", 0) / MB,
            pss_file_mb=r.get("Pss_File", 0) / MB,
            bundle_rss_mb=sum(m.rss for m in in_bundle) / MB,
            bundle_pss_mb=sum(m.pss for m in in_bundle) / MB,
            ready_s=ready_s,
            import_s=import_s,
            load_s=ready_s - import_s,
            started_s=w.started_s,
            since_start_s=since_start,
            ready_how=when[w.pid].how,
            bracket_s=when[w.pid].bracket,
        )
        for m in sorted(maps.values(), key=lambda m: -m.private)[:top]:
            name = m.name.removeprefix(prefix).replace(" ", "_")
            emit(worker=i, private_mapping=name, mb=m.private / MB)
    parent = smaps_rollup(server.pid)
    emit(
        parent_pid=server.pid,
        uss_mb=(parent.get("Private_Clean", 0) + parent.get("Private_Dirty", 0)) / MB,
        pss_mb=parent.get("Pss", 0) / MB,
    )
    times = ",".join(
        f"{t - server.started:.3f}" for t in [t for t, _ in server.matching(SERVING_LINE)]
    )
    emit(serving_log_lines_since_start_s=times or "none")
    sent, ok, seconds = warmup
    emit(warmup_requests=sent, status_200=ok, seconds=seconds)
    n = len(workers)
    bundle_mb = size / MB
    sum_pss = sum(pss)
    limit = bundle_mb + n * USS_LIMIT_MB
    emit(bundle_mb=bundle_mb)
    emit(sum_pss_mb=sum_pss)
    emit(check="uss_le_100mb", max_uss_mb=max(uss), ok=max(uss) <= USS_LIMIT_MB)
    # not a target, a reading of the one above: clean bundle pages that no other worker has
    # touched yet count as this worker's private memory (page cache, shared once others map them)
    emit(
        check="uss_outside_bundle_le_100mb",
        max_mb=max(uss_outside),
        ok=max(uss_outside) <= USS_LIMIT_MB,
    )
    emit(check=f"sum_pss_le_bundle_plus_{n}x100mb", value=sum_pss, limit=limit, ok=sum_pss <= limit)
    emit(check="ready_le_2s", max_ready_s=max(ready), ok=max(ready) <= READY_LIMIT_S)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as e:
        log(f"interrupted ({str(e) or 'Ctrl-C'}); the server was stopped")
        sys.exit(130)
