"""The OpenAPI contract, fuzzed: schemathesis against a real `segue serve` (2 workers, SQLite).

Every operation of the served OpenAPI gets generated requests, valid and invalid (bounded, so
that CI stays within a minute or two); each answer must not be a server error and must conform
to the schema: a documented status code, the documented content type, a body of the documented
schema. The counts per operation are written to the test's output (`-s`) and checked at the end.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.generation import GenerationMode
from schemathesis.schemas import APIOperation

from indexes.pipeline import BuildResult
from service.auth import Key, mint
from tests.service.conftest import Server, start_server, stop_server, wait_ready

CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]
EXAMPLES = int(os.environ.get("SEGUE_FUZZ_EXAMPLES", "30"))  # per operation and mode
# the server checks tokens (one HS256 key); the rate limit is out of the way of the fuzzing
KEY = Key(kid="fuzz", algorithm="HS256", key=b"fuzz-" + b"k" * 40)
SERVER_ENV = {
    "SEGUE_AUTH": "jwt", "SEGUE_AUTH_SECRETS": f"{KEY.kid}:{KEY.key.decode()}",
    "SEGUE_RATE_LIMIT_PER_SECOND": "100000", "SEGUE_RATE_LIMIT_BURST": "100000",
}  # fmt: skip


def authorization() -> dict[str, str]:
    """The headers every fuzzed request carries: a valid token of the user the known ids
    belong to, with every scope (admin too, so that the fuzzing reaches every handler)."""
    token = mint(KEY, subject="u0001", scopes=["catalog:read", "listen", "admin"],
                 ttl_seconds=3600, audience="segue", issuer="segue")  # fmt: skip
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def fuzzed_server(
    served_build: BuildResult, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    s = start_server(
        root=served_build.path.parent, tmp=tmp_path_factory.mktemp("fuzz"), env=SERVER_ENV
    )
    try:
        wait_ready(s)
        yield s
    finally:
        stop_server(s)


def fuzz(
    operation: APIOperation, mode: GenerationMode, *, url: str, ids: dict[str, str] | None = None
) -> tuple[int, Counter[int], str | None]:
    """Runs `EXAMPLES` generated cases of one operation in one mode: (cases, statuses, the
    first failure or None). `ids`: path parameters fixed to ids the server has (random ids are
    mostly 404s). No shrinking: a failure is reported as found (bounded time)."""
    statuses: Counter[int] = Counter()
    calls = [0]
    strategy = operation.as_strategy(
        generation_mode=mode, headers=authorization() or None, path_parameters=ids
    )

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
        suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate],
    )  # fmt: skip
    def run(case: schemathesis.Case) -> None:
        response = case.call(base_url=url, headers=authorization(), timeout=30)
        calls[0] += 1
        statuses[response.status_code] += 1
        case.validate_response(response, checks=CHECKS, headers=authorization())

    try:
        run()
    except Unsatisfiable:  # an operation with no input has no invalid one
        assert mode == GenerationMode.NEGATIVE and calls[0] == 0
    except Exception as e:  # the check's report names the request and what failed
        return (
            calls[0],
            statuses,
            f"{operation.method.upper()} {operation.path} ({mode.value}): {e}",
        )
    return calls[0], statuses, None


def known_ids(server: Server) -> dict[str, str]:
    """A track, an artist, a user and a station the server has."""
    with httpx.Client(base_url=server.url, timeout=10.0, headers=authorization()) as http:
        track = http.get("/v1/tracks", params={"limit": 1}).json()["items"][0]
        station = http.post("/v1/stations", json={"user_id": "u0001", "tracks": [track["id"]]})
        http.get(f"/v1/stations/{station.json()['id']}/tracks", params={"limit": 5})
    return {"track_id": track["id"], "artist_id": track["artist"]["id"], "user_id": "u0001",
            "station_id": station.json()["id"]}  # fmt: skip


@pytest.mark.slow
def test_every_operation_keeps_the_contract(fuzzed_server: Server) -> None:
    api = schemathesis.openapi.from_url(
        f"{fuzzed_server.url}/openapi.json", headers=authorization()
    )
    # deletions last: the known station stays there for the operations that use it
    operations = sorted(
        (result.ok() for result in api.get_all_operations()), key=lambda o: o.method == "delete"
    )
    spec = httpx.get(f"{fuzzed_server.url}/openapi.json", timeout=10).json()
    assert len(operations) == sum(len(ops) for ops in spec["paths"].values())
    known = known_ids(fuzzed_server)
    failures: list[str] = []
    total: Counter[int] = Counter()
    lines = []
    for operation in operations:
        names = [p.name for p in operation.path_parameters]
        runs: list[tuple[GenerationMode, dict[str, str] | None]] = [
            (GenerationMode.POSITIVE, None), (GenerationMode.NEGATIVE, None),
        ]  # fmt: skip
        if names:
            runs.append((GenerationMode.POSITIVE, {n: known[n] for n in names}))
        for mode, ids in runs:
            n, statuses, failure = fuzz(operation, mode, url=fuzzed_server.url, ids=ids)
            total.update(statuses)
            what = f"{mode.value}{' known ids' if ids else ''}"
            lines.append(f"  {n:4d} {what:18s} {operation.method.upper()} {operation.path}")
            if failure:
                failures.append(failure)
    print(f"\nschemathesis: {len(operations)} operations, {sum(total.values())} requests, "
          f"statuses {dict(sorted(total.items()))}\n" + "\n".join(lines))  # fmt: skip
    assert not failures, "\n\n".join(failures)
    assert not [s for s in total if s >= 500 and s != 503], total
