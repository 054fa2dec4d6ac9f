"""What the service benchmarks share: `key=value` output, and `segue serve` in a subprocess.

Run the benchmarks from the repository root with PYTHONPATH=. (see loadtest/README.md).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


def log(message: str) -> None:
    name = Path(sys.argv[0]).stem or "bench"
    print(f"[{name} {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def emit(**fields: object) -> None:
    """Prints one line of `key=value` pairs on stdout."""
    print(" ".join(f"{k}={_fmt(v)}" for k, v in fields.items()), flush=True)


def _fmt(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)


def random_ids(directory: Path, *, n: int, seed: int) -> list[str]:
    """n random track ids of the bundle (read into memory, not mmapped: no shared pages)."""
    ids = np.load(directory / "tracks.ids.npy", allow_pickle=False)
    rows = np.random.default_rng(seed).integers(0, len(ids), size=n)
    out = [bytes(ids[r]).decode("utf-8") for r in rows]
    del ids
    return out


def precompute(*, bundles: Path, store: str, max_chunks: int | None = None) -> None:
    """`segue precompute` of the bundle into the store, as a deployment runs it (in its own
    process: the bench's own process never maps the bundle, whose pages would then count as
    shared for the workers); `max_chunks`: a partial run (related artists first, then the radio
    lists of the first track rows, 500 per chunk)."""
    cmd = [sys.executable, "-m", "service.cli", "precompute", "--bundles", str(bundles),
           "--store", store, "--chunk-size", str(PRECOMPUTE_CHUNK)]  # fmt: skip
    if max_chunks is not None:
        cmd += ["--max-chunks", str(max_chunks)]
    log("running: " + " ".join(cmd))
    started = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    emit(precompute_s=time.perf_counter() - started)


PRECOMPUTE_CHUNK = 500


def first_rows_ids(directory: Path, *, n: int, seed: int) -> list[str]:
    """The ids of the first n track rows, each once, in a random order."""
    ids = np.load(directory / "tracks.ids.npy", allow_pickle=False)
    rows = np.random.default_rng(seed).permutation(min(n, len(ids)))
    out = [bytes(ids[r]).decode("utf-8") for r in rows]
    del ids
    return out


# --- the server --------------------------------------------------------------------------------


class Server:
    """`segue serve` in its own process group; its stderr lines are kept with monotonic times."""

    def __init__(self, *, bundles: Path, workers: int, port: int) -> None:
        self.bundles, self.workers, self.port = bundles, workers, port
        self.lines: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self.started = 0.0  # time.monotonic() just before the process was started

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def start(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
        # the benchmarks measure the service without authentication unless the caller's
        # environment sets it (bench_auth.py measures what authentication adds, on and off)
        env.setdefault("SEGUE_AUTH", "off")
        cmd = [
            sys.executable,
            "-m",
            "service.cli",
            "serve",
            "--bundles",
            str(self.bundles),
            "--workers",
            str(self.workers),
            "--host",
            HOST,
            "--port",
            str(self.port),
        ]
        log("starting: " + " ".join(cmd))
        self.started = time.monotonic()
        self._proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
            start_new_session=True,  # its own process group: stop() ends the workers too
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        for line in self._proc.stderr:
            now = time.monotonic()
            with self._lock:
                self.lines.append((now, line.rstrip("\n")))
            print(f"  server +{now - self.started:7.3f}s | {line.rstrip()}", file=sys.stderr)

    def matching(self, text: str) -> list[tuple[float, str]]:
        """The (monotonic time, line) of every server line seen so far that contains `text`."""
        with self._lock:
            return [(t, line) for t, line in self.lines if text in line]

    def check_alive(self) -> None:
        assert self._proc is not None
        code = self._proc.poll()
        if code is not None:
            with self._lock:
                tail = "\n".join(line for _, line in self.lines[-20:])
            raise RuntimeError(f"the server exited with code {code}:\n{tail}")

    def stop(self) -> None:
        """SIGTERM to the server's process group, SIGKILL after 20 s; waits for it."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        log(f"stopping the server (process group {proc.pid})")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            log("the server did not stop in 20 s: SIGKILL")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        if self._reader is not None:
            self._reader.join(timeout=5)


@contextlib.contextmanager
def running(*, bundles: Path, workers: int, port: int) -> Iterator[Server]:
    server = Server(bundles=bundles, workers=workers, port=port)
    # SIGTERM to this script must still stop the server: turn it into an exception
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port
