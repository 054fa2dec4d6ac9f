"""Where the tests find the real Cassandra that `scripts/cassandra start` runs.

`scripts/dev test` starts it and sets SEGUE_TEST_CASSANDRA (host:port) and
SEGUE_TEST_CASSANDRA_REQUIRED=1, so that in CI a Cassandra that does not answer fails the tests
instead of skipping them. Run on their own (plain `pytest`), the Cassandra tests skip with the
reason unless SEGUE_TEST_CASSANDRA is set.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "cassandra"


def address() -> str:
    """host:port of the test Cassandra, or skip (fail where it is required)."""
    value = os.environ.get("SEGUE_TEST_CASSANDRA")
    if value:
        return value
    reason = (
        "no Cassandra for this run: SEGUE_TEST_CASSANDRA is not set "
        "(`scripts/dev test` starts one with scripts/cassandra and sets it)"
    )
    if os.environ.get("SEGUE_TEST_CASSANDRA_REQUIRED") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def new_keyspace() -> str:
    return "test_" + uuid.uuid4().hex[:12]


def url(keyspace: str) -> str:
    return f"cassandra://{address()}/{keyspace}"


def script(command: str, *, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Runs scripts/cassandra (start, stop, status) for real."""
    return subprocess.run(
        ["bash", str(SCRIPT), command],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        check=False,
    )


def drop_keyspace(keyspace: str) -> None:
    from cassandra.cluster import Cluster

    host, _, port = address().rpartition(":")
    cluster = Cluster([host], port=int(port))
    try:
        session = cluster.connect()
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=60)
    finally:
        cluster.shutdown()
