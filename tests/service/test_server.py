"""The process model of `segue serve`: gunicorn forks the uvicorn workers and replaces one that dies."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from indexes.pipeline import BuildResult
from tests.service.conftest import children, start_server, stop_server, wait_ready


@pytest.mark.slow
def test_a_killed_worker_is_replaced_and_the_service_keeps_answering(
    served_build: BuildResult, tmp_path: Path
) -> None:
    server = start_server(root=served_build.path.parent, tmp=tmp_path, workers=2)
    try:
        wait_ready(server)
        workers = children(server.process.pid)
        assert len(workers) == 2
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)  # a crash: no shutdown, no lifespan exit
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            now = children(server.process.pid)
            if len(now) == 2 and victim not in now:
                break
            time.sleep(0.1)
        assert len(now) == 2 and victim not in now, (now, server.log.read_text()[-2000:])
        wait_ready(server)  # the new worker has loaded the bundle
        for _ in range(20):  # fresh connections: both workers answer
            r = httpx.get(f"{server.url}/v1/tracks", params={"limit": 1}, timeout=10)
            assert r.status_code == 200
        assert server.process.poll() is None
    finally:
        stop_server(server)
