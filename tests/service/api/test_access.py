"""Who may call what, over real HTTP: `segue serve` (2 workers, SQLite) with SEGUE_AUTH=jwt.

The policy matrix: every route of the app's own route table × {no token, bad signature,
expired, wrong scope, another user's token, the owner's token, admin}, each answer checked
against the table POLICY below. A route the table does not declare fails the test, and so does
a route whose code declares another policy than the table."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.routing import APIRoute, iter_route_contexts
from jwt.algorithms import ECAlgorithm
from starlette.routing import Mount, Route

from indexes.bundle import open_bundle
from indexes.pipeline import BuildResult
from service.api.access import policy_of
from service.app import create_app
from service.auth import Key, Policy, mint
from service.settings import Settings
from tests.service.conftest import Server, start_server, stop_server, wait_ready

OLD_SECRET = "old-" + "0" * 40
NEW_SECRET = "new-" + "1" * 40
SECRETS = f"new:{NEW_SECRET} old:{OLD_SECRET}"  # a rotation: both verify, `new` signs
AUD, ISS = "segue", "segue"

# -- the declared policy of every route ---------------------------------------------------------

STATION = "station"  # the listener policy, on one station (its owner's)
CREATE = "create"  # the listener policy, creating a station for the body's user_id
POLICY: dict[tuple[str, str], Policy | str] = {
    ("GET", "/v1/tracks"): Policy.CATALOG,
    ("GET", "/v1/tracks/{track_id}"): Policy.CATALOG,
    ("GET", "/v1/tracks/{track_id}/similar"): Policy.CATALOG,
    ("GET", "/v1/tracks/{track_id}/radio-neighbours"): Policy.CATALOG,
    ("GET", "/v1/artists"): Policy.CATALOG,
    ("GET", "/v1/artists/{artist_id}"): Policy.CATALOG,
    ("GET", "/v1/artists/{artist_id}/related"): Policy.CATALOG,
    ("GET", "/v1/users/{user_id}/recommendations"): Policy.USER,
    ("POST", "/v1/stations"): CREATE,
    ("GET", "/v1/stations/{station_id}"): STATION,
    ("GET", "/v1/stations/{station_id}/tracks"): STATION,
    ("GET", "/v1/stations/{station_id}/queue"): STATION,
    ("POST", "/v1/stations/{station_id}/feedback"): STATION,
    ("DELETE", "/v1/stations/{station_id}"): STATION,
    ("GET", "/livez"): Policy.OPEN,
    ("GET", "/readyz"): Policy.OPEN,
    ("GET", "/v1/ops"): Policy.ADMIN,
    ("GET", "/metrics"): Policy.METRICS,  # open by default (SEGUE_AUTH_OPEN_METRICS)
    ("GET", "/openapi.json"): Policy.OPEN,  # the contract, and FastAPI's pages of it
    ("GET", "/docs"): Policy.OPEN,
    ("GET", "/docs/oauth2-redirect"): Policy.OPEN,
    ("GET", "/redoc"): Policy.OPEN,
    ("GET", "/"): Policy.OPEN,  # a redirect to the console
    ("GET", "/console"): Policy.OPEN,  # the console's static files (its API calls need tokens)
}
CALLERS = ("no token", "bad signature", "expired", "wrong scope", "other user", "owner", "admin")
OK = {"GET": 200, "POST": 200, "DELETE": 204}
I401, R401, S403, F403, N404 = "401 invalid_token", "401 realm", "403 scope", "403", "404"


def expected(policy: Policy | str, method: str, path: str) -> list[str | int]:
    """The answers of CALLERS, in order."""
    ok: int = 201 if policy == CREATE else 307 if path == "/" else OK[method]
    if policy in (Policy.OPEN, Policy.METRICS):
        return [ok] * 7
    refused: list[str | int] = [R401, I401, I401, S403]
    if policy is Policy.ADMIN:  # no route has it yet (operations beyond the probes will)
        return [*refused, S403, S403, ok]
    if policy is Policy.CATALOG:
        return [*refused, ok, ok, ok]
    if policy in (Policy.USER, CREATE):  # for the owner's user id: another user may not
        return [*refused, F403, ok, ok]
    assert policy == STATION
    return [*refused, N404, ok, ok]  # someone else's station does not exist for them


def route_table() -> list[tuple[str, str, Any]]:
    """(method, path, route) of every route the app serves, the included routers' too."""
    app = create_app(Settings(auth="jwt", auth_secrets=SECRETS))
    out = []
    for route in iter_route_contexts(app.routes):
        if isinstance(route.original_route, Mount):  # static files: GET (and HEAD)
            out.append(("GET", route.original_route.path, route))
            continue
        assert isinstance(route.original_route, APIRoute | Route), route
        for method in sorted((route.methods or set()) - {"HEAD"}):
            out.append((method, route.path_format, route))
    return out


def test_every_route_has_a_declared_policy_and_its_code_declares_the_same() -> None:
    table = route_table()
    undeclared = [(m, p) for m, p, _ in table if (m, p) not in POLICY]
    assert not undeclared, f"routes without a policy in POLICY: {undeclared}"
    assert {(m, p) for m, p, _ in table} == set(POLICY)  # and no stale entries
    for method, path, route in table:
        declared = POLICY[(method, path)]
        in_code = policy_of(route) if isinstance(route.original_route, APIRoute) else None
        if declared in (STATION, CREATE):
            declared = Policy.LISTENER
        assert (in_code or Policy.OPEN) is declared, (method, path)


# -- the server and its callers -----------------------------------------------------------------


@dataclass
class Ids:
    track: str
    artist: str
    owner: str
    other: str


@pytest.fixture(scope="module")
def ids(served_build: BuildResult) -> Ids:
    with open_bundle(served_build.path) as b:
        assert b.users is not None
        return Ids(track=b.tracks.id_of(5), artist=b.artists.id_of(2), owner=b.users.id_of(3),
                   other=b.users.id_of(4))  # fmt: skip


@pytest.fixture(scope="module")
def es256(tmp_path_factory: pytest.TempPathFactory) -> tuple[Key, Path]:
    """An identity provider's key pair: the private key signs, the JWKS file holds the public."""
    private = ec.generate_private_key(ec.SECP256R1())
    jwk = {**json.loads(ECAlgorithm.to_jwk(private.public_key())), "kid": "idp-1", "alg": "ES256"}
    path = tmp_path_factory.mktemp("jwks") / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk]}))
    return Key(kid="idp-1", algorithm="ES256", key=private), path


@pytest.fixture(scope="module")
def auth_server(
    served_build: BuildResult, es256: tuple[Key, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    env = {"SEGUE_AUTH": "jwt", "SEGUE_AUTH_SECRETS": SECRETS,
           "SEGUE_AUTH_JWKS_FILE": str(es256[1]), "SEGUE_RATE_LIMIT_PER_SECOND": "10000",
           "SEGUE_RATE_LIMIT_BURST": "10000", "SEGUE_RATE_LIMIT_ANONYMOUS_PER_SECOND": "10000"}  # fmt: skip
    s = start_server(root=served_build.path.parent, tmp=tmp_path_factory.mktemp("auth"), env=env)
    try:
        wait_ready(s)
        yield s
    finally:
        stop_server(s)


NEW = Key(kid="new", algorithm="HS256", key=NEW_SECRET.encode())
OLD = Key(kid="old", algorithm="HS256", key=OLD_SECRET.encode())


def bearer(
    key: Key, *, sub: str, scopes: list[str], ttl: int = 300, now: float | None = None
) -> dict[str, str]:
    raw = mint(key, subject=sub, scopes=scopes, ttl_seconds=ttl, audience=AUD, issuer=ISS, now=now)
    return {"Authorization": f"Bearer {raw}"}


def callers(ids: Ids, *, needs: str) -> dict[str, dict[str, str]]:
    """The headers of each caller; `needs`: the scope of the route (the wrong one lacks it)."""
    every = ["catalog:read", "listen"]
    forged = Key(kid="new", algorithm="HS256", key=b"not-the-secret-" + b"x" * 32)
    return {
        "no token": {},
        "bad signature": bearer(forged, sub=ids.owner, scopes=every),
        "expired": bearer(NEW, sub=ids.owner, scopes=every, ttl=60, now=time.time() - 3600),
        "wrong scope": bearer(NEW, sub=ids.owner, scopes=[s for s in every if s != needs]),
        "other user": bearer(NEW, sub=ids.other, scopes=every),
        "owner": bearer(NEW, sub=ids.owner, scopes=every),
        "admin": bearer(OLD, sub="ops", scopes=["admin"]),  # the older key of the rotation
    }


def new_station(http: httpx.Client, ids: Ids) -> str:
    r = http.post("/v1/stations", json={"user_id": ids.owner, "tracks": [ids.track]},
                  headers=bearer(NEW, sub=ids.owner, scopes=["listen"]))  # fmt: skip
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def played_track(http: httpx.Client, ids: Ids, *, station: str) -> str:
    r = http.get(f"/v1/stations/{station}/tracks", params={"limit": 1},
                 headers=bearer(NEW, sub=ids.owner, scopes=["listen"]))  # fmt: skip
    assert r.status_code == 200, r.text
    return str(r.json()["items"][0]["id"])


def request_of(
    method: str, path: str, ids: Ids, http: httpx.Client
) -> Callable[[dict[str, str]], httpx.Response]:
    """A request of the route with real ids (a fresh station of the owner's for each call)."""
    body: dict[str, Any] | None = None
    if path == "/v1/stations":
        body = {"user_id": ids.owner, "tracks": [ids.track]}
    elif path.endswith("/feedback"):
        body = {"event_id": uuid.uuid4().hex, "track_id": ids.track, "type": "skip"}
    params = {"track_id": ids.track, "artist_id": ids.artist, "user_id": ids.owner}

    def send(headers: dict[str, str]) -> httpx.Response:
        if path == "/console":
            return http.request(method, "/console/", headers=headers)
        station = new_station(http, ids) if "{station_id}" in path else ""
        url = path.format(**params, station_id=station)
        if body is not None and "track_id" in body:  # feedback is on a track the station played
            body["track_id"] = played_track(http, ids, station=station)
        return http.request(method, url, json=body, headers=headers)

    return send


def answer(r: httpx.Response) -> str | int:
    """The status, and for a refusal what tells it apart: the challenge, the error model."""
    if r.status_code in (401, 403, 404):
        assert set(r.json()) == {"detail"} and isinstance(r.json()["detail"], str), r.text
    challenge = r.headers.get("www-authenticate", "")
    if r.status_code == 401:
        if 'error="invalid_token"' in challenge:
            assert "error_description=" in challenge
            return I401
        assert challenge == 'Bearer realm="segue"', challenge
        return R401
    if r.status_code == 403:
        return S403 if 'error="insufficient_scope"' in challenge else F403
    if r.status_code == 404:
        return N404
    return r.status_code


def test_the_policy_matrix(auth_server: Server, ids: Ids) -> None:
    table = route_table()
    cells = 0
    wrong = []
    with auth_server.client() as http:
        for method, path, _route in table:
            policy = POLICY[(method, path)]
            needs = "catalog:read" if policy is Policy.CATALOG else "listen"
            send = request_of(method, path, ids, http)
            want = expected(policy, method, path)
            for caller, headers in callers(ids, needs=needs).items():
                got = answer(send(headers))
                cells += 1
                if got != want[CALLERS.index(caller)]:
                    wrong.append(
                        f"{method} {path} {caller}: {got}, expected {want[CALLERS.index(caller)]}"
                    )
    assert not wrong, "\n".join(wrong)
    assert cells == len(table) * len(CALLERS) == 168
    print(f"policy matrix: {len(table)} routes x {len(CALLERS)} callers = {cells} cells")


def test_someone_elses_station_answers_exactly_like_none(auth_server: Server, ids: Ids) -> None:
    other = bearer(NEW, sub=ids.other, scopes=["listen"])
    with auth_server.client() as http:
        sid = new_station(http, ids)
        missing = uuid.uuid4().hex
        for method, suffix, body in (
            ("GET", "", None), ("GET", "/tracks", None), ("DELETE", "", None),
            ("POST", "/feedback", {"event_id": "e1", "track_id": ids.track, "type": "thumbs_up"}),
        ):  # fmt: skip
            theirs = http.request(method, f"/v1/stations/{sid}{suffix}", json=body, headers=other)
            none = http.request(method, f"/v1/stations/{missing}{suffix}", json=body, headers=other)
            assert theirs.status_code == none.status_code == 404
            assert theirs.json()["detail"] == none.json()["detail"].replace(missing, sid)
            assert set(theirs.headers) - {"date"} == set(none.headers) - {"date"}
        # and nothing happened to it: not played, no feedback, not deleted
        st = http.get(f"/v1/stations/{sid}", headers=bearer(NEW, sub=ids.owner, scopes=["listen"]))
        assert st.status_code == 200 and st.json()["played"] == 0 and st.json()["events"] == {}


def test_tokens_of_an_identity_provider_jwks_and_both_keys_of_a_rotation(
    auth_server: Server, ids: Ids, es256: tuple[Key, Path]
) -> None:
    url = f"/v1/users/{ids.owner}/recommendations"
    with auth_server.client() as http:
        for key in (NEW, OLD, es256[0]):
            r = http.get(url, headers=bearer(key, sub=ids.owner, scopes=["listen"]))
            assert r.status_code == 200, (key.kid, r.text)
        gone = Key(kid="older", algorithm="HS256", key=b"z" * 40)  # a key rotated out
        r = http.get(url, headers=bearer(gone, sub=ids.owner, scopes=["listen"]))
        assert r.status_code == 401 and "unknown key id" in r.headers["www-authenticate"]
        for header in ("Basic dTE6cHc=", "Bearer not-a-jwt"):
            r = http.get(url, headers={"Authorization": header})
            assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]


def test_no_token_reaches_the_log(auth_server: Server, ids: Ids) -> None:
    marker = bearer(NEW, sub=ids.owner, scopes=["listen"])["Authorization"].split()[1]
    with auth_server.client() as http:
        http.get(
            f"/v1/users/{ids.owner}/recommendations", headers={"Authorization": f"Bearer {marker}"}
        )
        http.get("/v1/tracks", headers={"Authorization": f"Bearer {marker[:-4]}AAAA"})
    log = auth_server.log.read_text()
    assert marker[:40] not in log and marker.split(".")[1] not in log


def test_the_openapi_documents_the_bearer_scheme(auth_server: Server) -> None:
    spec = httpx.get(f"{auth_server.url}/openapi.json", timeout=10).json()
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    similar = spec["paths"]["/v1/tracks/{track_id}/similar"]["get"]
    assert similar["security"] == [{"bearer": []}]
    assert {"401", "403", "429"} <= set(similar["responses"])
    assert "security" not in spec["paths"]["/livez"]["get"]


@pytest.mark.slow
def test_a_caller_over_the_rate_limit_gets_429_with_retry_after(
    served_build: BuildResult, ids: Ids, tmp_path: Path
) -> None:
    env = {"SEGUE_AUTH": "jwt", "SEGUE_AUTH_SECRETS": SECRETS, "SEGUE_RATE_LIMIT_PER_SECOND": "0.2",
           "SEGUE_RATE_LIMIT_BURST": "5", "SEGUE_RATE_LIMIT_ANONYMOUS_PER_SECOND": "0.2"}  # fmt: skip
    s = start_server(root=served_build.path.parent, tmp=tmp_path, workers=1, env=env)
    try:
        wait_ready(s)
        owner = bearer(NEW, sub=ids.owner, scopes=["catalog:read"])
        with s.client() as http:
            answers = [http.get(f"/v1/tracks/{ids.track}", headers=owner) for _ in range(8)]
            assert [r.status_code for r in answers] == [200] * 5 + [429] * 3
            refused = answers[-1]
            assert 1 <= int(refused.headers["retry-after"]) <= 5
            assert refused.json() == {
                "detail": f"rate limit exceeded, try again in {refused.headers['retry-after']} s"
            }
            other = bearer(NEW, sub=ids.other, scopes=["catalog:read"])
            assert http.get(f"/v1/tracks/{ids.track}", headers=other).status_code == 200
            anonymous = [http.get("/v1/tracks").status_code for _ in range(7)]
            assert anonymous == [401] * 5 + [429] * 2  # per address, refused or not
            assert all(http.get("/livez").status_code == 200 for _ in range(10))  # probes: never
    finally:
        stop_server(s)


def test_auth_off_is_said_at_start(server: Server) -> None:
    """The tests' own server runs with SEGUE_AUTH=off: `segue serve` and each worker say so."""
    log = server.log.read_text()
    assert log.count("SEGUE_AUTH=off: no authentication, every caller may do anything") >= 3
    r = httpx.get(f"{server.url}/v1/users/u0003/recommendations", timeout=10)
    assert r.status_code in (200, 404) and "www-authenticate" not in r.headers
