"""A real server: `segue serve` (uvicorn, 2 workers) on a bundle built from the synthetic catalogue."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from indexes.datasets.synthetic import generate_synthetic
from indexes.pipeline import BuildResult, build_bundle
from tests.conftest import TINY
from tests.service import cassandra_server as cassandra


@dataclass
class Server:
    url: str
    root: Path
    metrics_dir: Path
    process: subprocess.Popen[bytes]
    log: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10.0)


def children(pid: int) -> set[int]:
    """The child processes of `pid`: for `segue serve`, its uvicorn workers (gunicorn forks them)."""
    return {int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    *, root: Path, tmp: Path, workers: int = 2, env: dict[str, str] | None = None
) -> Server:
    port = free_port()
    log = tmp / f"server-{port}.log"
    metrics_dir = tmp / f"metrics-{port}"
    full_env = {
        **os.environ,
        "SEGUE_METRICS_DIR": str(metrics_dir),
        "SEGUE_SWAP_POLL_SECONDS": "0.5",
        "SEGUE_AUTH": "off",  # unless `env` turns it on (a test of authentication)
        "SEGUE_STORE": f"sqlite:///{tmp / f'store-{port}.db'}",
        **(env or {}),
    }
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--bundles", str(root),
             "--workers", str(workers), "--host", "127.0.0.1", "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, env=full_env,
            cwd=Path(__file__).resolve().parents[2],
        )  # fmt: skip
    return Server(
        url=f"http://127.0.0.1:{port}", root=root, metrics_dir=metrics_dir, process=process, log=log
    )


def wait_ready(server: Server, *, timeout: float = 60.0, in_a_row: int = 10) -> None:
    """Every worker is ready: /readyz answers 200 `in_a_row` times on fresh connections."""
    deadline = time.monotonic() + timeout
    ok = 0
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited: {server.log.read_text()}")
        try:
            r = httpx.get(server.url + "/readyz", timeout=2.0)
            ok = ok + 1 if r.status_code == 200 else 0
        except httpx.TransportError:
            ok = 0
        if ok >= in_a_row:
            return
        time.sleep(0.05)
    raise RuntimeError(f"server not ready in {timeout}s: {server.log.read_text()}")


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture(scope="session")
def served_build(tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    root = tmp_path_factory.mktemp("served") / "bundles"
    # two experiment variants: the fitted weights, and the same without the popularity features
    variants = {
        "control": {"share": 1},
        "fewer-hits": {
            "share": 1,
            "weights": {"tracks": {"popularity": 0.0, "rank:popularity": 0.0}},
        },
    }
    config = dataclasses.replace(TINY, variants=variants)
    return build_bundle(generate_synthetic(n_tracks=1500, seed=21), out=root, config=config)


@pytest.fixture(scope="session")
def server(served_build: BuildResult, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = start_server(root=served_build.path.parent, tmp=tmp_path_factory.mktemp("server"))
    try:
        wait_ready(s)
        yield s
    finally:
        stop_server(s)


@pytest.fixture(scope="session")
def open_server(
    served_build: BuildResult, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """`segue serve` with authentication off, shared by the console's browser test and the
    test of the metrics that deploy/'s dashboard and alerts query."""
    s = start_server(root=served_build.path.parent, tmp=tmp_path_factory.mktemp("open-server"),
                     env={"SEGUE_AUTH": "off"})  # fmt: skip
    try:
        wait_ready(s)
        yield s
    finally:
        stop_server(s)


@pytest.fixture(scope="module")
def keyspace() -> Iterator[str]:
    """A keyspace of its own for a module of service-on-Cassandra tests."""
    name = cassandra.new_keyspace()
    cassandra.address()  # skip (or fail in CI) before building anything
    yield name
    cassandra.drop_keyspace(name)


@pytest.fixture(scope="module")
def cassandra_server(
    served_build: BuildResult, keyspace: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """`segue serve` on the test Cassandra, one per module."""
    s = start_server(
        root=served_build.path.parent,
        tmp=tmp_path_factory.mktemp("cassandra-server"),
        env={"SEGUE_STORE": cassandra.url(keyspace), "SEGUE_STORE_CHECK_SECONDS": "0.5"},
    )
    try:
        wait_ready(s, timeout=120)
        yield s
    finally:
        stop_server(s)


def some_tracks(http: httpx.Client, n: int) -> list[str]:
    return [t["id"] for t in http.get("/v1/tracks", params={"limit": n}).json()["items"]]
