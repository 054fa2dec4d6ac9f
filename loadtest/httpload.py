"""HTTP pieces the service benchmarks share: a minimal keep-alive client, wrk runs with a Lua
script, readiness, percentiles and the server's CPU time."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from loadtest.common import HOST, Server, emit, log

CLK_TCK = os.sysconf("SC_CLK_TCK")
INSTALL_WRK = "wrk is not installed: apt-get install -y wrk  (Debian/Ubuntu; or build it from https://github.com/wg/wrk)"


def wrk_missing() -> bool:
    """True (and how to install it, on stderr) when wrk is not on the PATH."""
    if shutil.which("wrk") is not None:
        return False
    print(INSTALL_WRK, file=sys.stderr)
    return True


# wrk runs one Lua state per thread: `setup` numbers the threads, `init` seeds each one and reads
# the ids, `done` prints the summary in one parseable line
WRK_LUA = """
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("thread_no", counter)
end

ids = {}
function init(args)
  math.randomseed(os.time() * 1000 + (thread_no or 0))
  if IDS_FILE ~= "" then
    for line in io.lines(IDS_FILE) do ids[#ids + 1] = line end
  end
end

if IDS_FILE ~= "" then
  request = function()
    local path = string.format(PATH_FORMAT, ids[math.random(#ids)])
    return wrk.format("GET", path)
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK requests=%d duration_us=%d connect=%d read=%d write=%d status=%d timeout=%d "
      .. "p50_us=%d p90_us=%d p99_us=%d max_us=%d\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def wait_ready(server: Server, *, port: int, timeout: float) -> None:
    """Until every worker logged "serving bundle" and /readyz answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        server.check_alive()
        # counted in the text, not by line: two workers' lines can reach stderr as one
        serving = sum(
            line.count("serving bundle ") for _, line in server.matching("serving bundle ")
        )
        if serving >= server.workers:
            status = asyncio.run(_status(port=port, path="/readyz"))
            if status == 200:
                log(f"ready after {time.monotonic() - server.started:.1f} s")
                return
        time.sleep(0.1)
    raise TimeoutError(f"the server was not ready within {timeout:.0f} s")


async def _status(*, port: int, path: str) -> int:
    conn = await Conn.open(port=port)
    try:
        status, _ = await conn.get(path)
        return status
    finally:
        conn.close()


def server_cpu_ticks(pid: int) -> int:
    """utime + stime of the server process and its children (the workers), in clock ticks."""
    total = 0
    pids = [pid]
    with contextlib.suppress(FileNotFoundError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(FileNotFoundError):
                pids += [
                    int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()
                ]
    for p in pids:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            stat = Path(f"/proc/{p}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            total += int(fields[11]) + int(fields[12])
    return total


def cassandra_cpu_ticks() -> int | None:
    """utime + stime of the Cassandra processes on this machine (a store on the same cores
    takes its share of them), in clock ticks; None when no Cassandra runs here."""
    total, found = 0, False
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(FileNotFoundError, ProcessLookupError, PermissionError):
            if (
                b"org.apache.cassandra.service.CassandraDaemon"
                not in Path(f"/proc/{entry}/cmdline").read_bytes()
            ):
                continue
            stat = Path(f"/proc/{entry}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            total += int(fields[11]) + int(fields[12])
            found = True
    return total if found else None


# --- peak load: wrk ----------------------------------------------------------------------------


@dataclass(frozen=True)
class WrkResult:
    rps: float
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non_2xx: int
    socket_errors: int
    server_cpu_s: float
    wrk_cpu_s: float


def run_wrk(
    *,
    server: Server,
    url: str,
    lua: Path,
    seconds: float,
    connections: int,
    threads: int,
    headers: dict[str, str] | None = None,
) -> WrkResult:
    """`headers` go with every request (wrk -H; the log names them, not their values)."""
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s"]
    cmd += ["--timeout", "5s", "-s", str(lua), url]
    shown = cmd + [f"-H '{name}: ...'" for name in headers or {}]
    for name, value in (headers or {}).items():
        cmd[1:1] = ["-H", f"{name}: {value}"]
    log("running: " + " ".join(shown))
    before_server = server_cpu_ticks(server.pid)
    before_self = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=seconds + 60, check=False, cwd=lua.parent
    )
    after_self = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_cpu = (server_cpu_ticks(server.pid) - before_server) / CLK_TCK
    wrk_cpu = (after_self.ru_utime + after_self.ru_stime) - (
        before_self.ru_utime + before_self.ru_stime
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()}")
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRK ")), None)
    if line is None:
        raise RuntimeError(f"no summary from wrk:\n{done.stdout}\n{done.stderr}")
    v = {k: int(x) for k, x in re.findall(r"(\w+)=(\d+)", line)}
    secs = v["duration_us"] / 1e6
    return WrkResult(
        rps=v["requests"] / secs,
        requests=v["requests"],
        seconds=secs,
        p50_ms=v["p50_us"] / 1e3,
        p90_ms=v["p90_us"] / 1e3,
        p99_ms=v["p99_us"] / 1e3,
        max_ms=v["max_us"] / 1e3,
        non_2xx=v["status"],
        socket_errors=v["connect"] + v["read"] + v["write"] + v["timeout"],
        server_cpu_s=server_cpu,
        wrk_cpu_s=wrk_cpu,
    )


def write_lua(
    directory: Path, *, name: str, ids_file: Path | None, path_template: str = ""
) -> Path:
    """A wrk script: GET `path_template` with {id} a random line of `ids_file` (if given)."""
    path = directory / name
    ids = "" if ids_file is None else str(ids_file)
    fmt = path_template.replace("%", "%%").replace("{id}", "%s")
    header = f"IDS_FILE = {_lua_string(ids)}\nPATH_FORMAT = {_lua_string(fmt)}\n"
    path.write_text(header + WRK_LUA, encoding="utf-8")
    return path


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Conn:
    """One keep-alive HTTP/1.1 connection: GET and a Content-Length body, nothing more."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, *, port: int) -> Conn:
        reader, writer = await asyncio.open_connection(HOST, port)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def get(self, path: str) -> tuple[int, bytes]:
        return await self.request("GET", path)

    async def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        """One request (a JSON body if given) and its status and body."""
        head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + (body or b""))
        status_line = await self.reader.readline()
        parts = status_line.split(None, 2)
        if len(parts) < 2:
            raise ConnectionError(f"bad status line {status_line!r}")
        length = None
        while True:
            header = await self.reader.readline()
            if header in (b"\r\n", b"\n", b""):
                break
            name, _, value = header.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        status = int(parts[1])
        if length is None:
            if status in (204, 304):
                return status, b""
            raise ConnectionError("response without Content-Length")
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile; nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, int(np.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def emit_wrk(endpoint: str, r: WrkResult) -> None:
    emit(
        endpoint=endpoint,
        rps=r.rps,
        p50_ms=r.p50_ms,
        p90_ms=r.p90_ms,
        p99_ms=r.p99_ms,
        max_ms=r.max_ms,
        requests=r.requests,
        non_2xx=r.non_2xx,
        socket_errors=r.socket_errors,
        server_cpu_s=r.server_cpu_s,
        wrk_cpu_s=r.wrk_cpu_s,
    )


@contextlib.contextmanager
def environment(**values: str | None) -> Iterator[None]:
    """SEGUE_* variables for the server started inside (None: left as it is)."""
    saved = {k: os.environ.get(k) for k in values}
    for k, v in values.items():
        if v is not None:
            os.environ[k] = v
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
