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
from typing import Any

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


def cluster() -> Any:
    """A plain driver Cluster on the test Cassandra, for checks behind the store's back."""
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import DCAwareRoundRobinPolicy

    host, _, port = address().rpartition(":")
    profile = ExecutionProfile(load_balancing_policy=DCAwareRoundRobinPolicy())
    return Cluster([host], port=int(port), protocol_version=5,
                   execution_profiles={EXEC_PROFILE_DEFAULT: profile})  # fmt: skip


def answers() -> bool:
    """Whether CQL answers at the test Cassandra's address now."""
    c = cluster()
    try:
        c.connect().execute("SELECT release_version FROM system.local", timeout=10)
        return True
    except Exception:  # the driver raises several kinds for a node that is down or starting
        return False
    finally:
        c.shutdown()


def drop_keyspace(keyspace: str) -> None:
    c = cluster()
    try:
        session = c.connect()
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=60)
    finally:
        c.shutdown()
