"""service/auth.py without HTTP: keys, tokens (HS256 secrets, RS256/ES256 from a JWKS file,
rotation by kid), the policy of each kind of route, and the gate (rate limit, auth off)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from service import auth
from service.auth import (
    ADMIN,
    ANONYMOUS,
    CATALOG_READ,
    LISTEN,
    UNCHECKED,
    AccessRules,
    AuthConfigError,
    Gate,
    Key,
    Policy,
    Principal,
    Verifier,
)
from service.errors import Forbidden, InsufficientScope, TooManyRequests, Unauthenticated
from service.settings import Settings

SECRET_1 = "a" * 32 + "-first"
SECRET_2 = "b" * 32 + "-second"
AUD, ISS = "segue", "segue"


def settings(**values: Any) -> Settings:
    return Settings.model_validate({"auth": "jwt", **values})


def hs_keys() -> list[Key]:
    return auth.parse_secrets(f"k2:{SECRET_2}, k1:{SECRET_1}", source="test")


def verifier(keys: list[Key] | None = None) -> Verifier:
    return Verifier(keys or hs_keys(), audience=AUD, issuer=ISS, leeway_seconds=5)


def token(key: Key, *, sub: str = "u1", scope: str = "listen", **claims: Any) -> str:
    now = int(time.time())
    body = {"sub": sub, "scope": scope, "aud": AUD, "iss": ISS, "iat": now, "exp": now + 60}
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(body, key.key, algorithm=key.algorithm, headers={"kid": key.kid})


def b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def reason(v: Verifier, raw: str) -> str:
    with pytest.raises(Unauthenticated) as e:
        v.verify(raw)
    assert e.value.token_sent and e.value.status_code == 401
    header = e.value.headers["WWW-Authenticate"]
    assert header.startswith('Bearer realm="segue", error="invalid_token", error_description="')
    assert raw not in header and raw not in str(e.value.detail)  # never the token itself
    return str(e.value.detail)


# -- keys ---------------------------------------------------------------------------------------


def test_secrets_are_kid_secret_entries_the_first_signs() -> None:
    keys = auth.parse_secrets(f" k2:{SECRET_2}\nk1:{SECRET_1} ", source="S")
    assert [(k.kid, k.algorithm) for k in keys] == [("k2", "HS256"), ("k1", "HS256")]
    with pytest.raises(AuthConfigError, match="S: entry 1 is not KID:SECRET"):
        auth.parse_secrets(SECRET_1, source="S")
    with pytest.raises(AuthConfigError, match="shorter than 32 bytes"):
        auth.parse_secrets("k:short", source="S")


def test_keys_come_from_the_settings_or_a_file_and_there_must_be_some(tmp_path: Path) -> None:
    with pytest.raises(AuthConfigError, match="SEGUE_AUTH=jwt needs keys"):
        auth.load_keys(settings())
    file = tmp_path / "secrets"
    file.write_text(f"k1:{SECRET_1}\n")
    assert [k.kid for k in auth.load_keys(settings(auth_secrets_file=file))] == ["k1"]
    with pytest.raises(AuthConfigError, match=r"SEGUE_AUTH_SECRETS_FILE=.*nope"):
        auth.load_keys(settings(auth_secrets_file=tmp_path / "nope"))
    with pytest.raises(AuthConfigError, match="two keys share a kid"):
        auth.load_keys(settings(auth_secrets=f"k1:{SECRET_1} k1:{SECRET_2}"))
    with pytest.raises(ValueError, match="not both"):
        settings(auth_secrets=f"k1:{SECRET_1}", auth_secrets_file=file)


def rsa_jwk(kid: str) -> tuple[Key, dict[str, Any]]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(private.public_key()))
    return Key(kid=kid, algorithm="RS256", key=private), {**jwk, "kid": kid, "alg": "RS256"}


def ec_jwk(kid: str) -> tuple[Key, dict[str, Any]]:
    private = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(ECAlgorithm.to_jwk(private.public_key()))
    return Key(kid=kid, algorithm="ES256", key=private), {**jwk, "kid": kid}  # alg from crv


def test_a_jwks_file_gives_rs256_and_es256_public_keys(tmp_path: Path) -> None:
    rs_signer, rs_jwk = rsa_jwk("rsa-1")
    es_signer, es_jwk = ec_jwk("ec-1")
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [rs_jwk, es_jwk]}))
    keys = auth.load_keys(settings(auth_jwks_file=jwks, auth_secrets=f"k1:{SECRET_1}"))
    assert [(k.kid, k.algorithm) for k in keys] == [
        ("k1", "HS256"), ("rsa-1", "RS256"), ("ec-1", "ES256"),
    ]  # fmt: skip
    v = verifier(keys)
    assert v.verify(token(rs_signer, sub="u7")).subject == "u7"
    assert v.verify(token(es_signer, sub="u8")).subject == "u8"
    # a token signed with the other key pair under this kid is refused
    other, _ = rsa_jwk("rsa-1")
    assert reason(v, token(other)) == "bad signature"


def test_a_jwks_file_refuses_keys_it_cannot_use(tmp_path: Path) -> None:
    jwks = tmp_path / "jwks.json"
    for content, message in (
        ("{nope", "not a JWKS document"),
        (json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "h"}]}), "is HS256"),
        (json.dumps({"keys": [{**rsa_jwk("x")[1], "kid": None}]}), "needs a kid"),
        (json.dumps({"keys": [rsa_jwk("x")[1], {"kty": "RSA", "kid": "broken"}]}), "broken"),
    ):
        jwks.write_text(content)
        with pytest.raises(AuthConfigError, match=message):
            auth.load_keys(settings(auth_jwks_file=jwks))


# -- tokens -------------------------------------------------------------------------------------


def test_a_valid_token_gives_its_subject_and_scopes() -> None:
    k2, k1 = hs_keys()
    v = verifier()
    p = v.verify(token(k1, sub="u0012", scope="catalog:read listen"))
    assert p == Principal(subject="u0012", scopes=frozenset({CATALOG_READ, LISTEN}))
    assert v.verify(token(k2)).subject == "u1"  # both keys of a rotation verify
    assert v.authenticate(f"Bearer {token(k1)}").subject == "u1"
    assert v.authenticate(None) == ANONYMOUS
    minted = auth.mint(k2, subject="u3", scopes=[ADMIN], ttl_seconds=60, audience=AUD, issuer=ISS)
    assert v.verify(minted) == Principal(subject="u3", scopes=frozenset({ADMIN}))
    assert jwt.get_unverified_header(minted)["kid"] == "k2"


def test_each_bad_token_is_refused_with_its_reason() -> None:
    _k2, k1 = hs_keys()
    v = verifier()
    past = int(time.time()) - 3600
    forged = Key(kid="k1", algorithm="HS256", key=b"x" * 32)
    cases = {
        "malformed token": "not.a.token",
        "token expired": token(k1, exp=past),
        "token not valid yet (nbf)": token(k1, nbf=int(time.time()) + 600),
        "bad signature": token(forged),
        "unknown key id (kid)": token(Key(kid="k9", algorithm="HS256", key=b"y" * 32)),
        "wrong audience (expected 'segue')": token(k1, aud="someone-else"),
        "wrong issuer (expected 'segue')": token(k1, iss="someone-else"),
        "the token has no 'exp' claim": token(k1, exp=None),
        "the token has no 'sub' claim": token(k1, sub=None),
        "'sub' must be a user id (1 to 256 characters)": token(k1, sub=""),
        "'scope' must be a space-separated string": token(k1, scope=7),
    }
    for expected, raw in cases.items():
        assert reason(v, raw) == expected, expected
    # within the leeway (5 s) an expired token still passes
    assert v.verify(token(k1, exp=int(time.time()) - 2)).subject == "u1"


def test_a_token_cannot_choose_its_algorithm() -> None:
    """The algorithm is the key's: `none`, or HS256 signed with an RSA key's public JWK as the
    secret (the classic confusion), is refused."""
    signer, jwk = rsa_jwk("rsa-1")
    keys = auth.parse_jwks(json.dumps({"keys": [jwk]}), source="t")
    v = verifier(keys)
    unsigned = jwt.encode({"sub": "u1", "aud": AUD, "iss": ISS, "exp": int(time.time()) + 60},
                          None, algorithm="none", headers={"kid": "rsa-1"})  # fmt: skip
    assert reason(v, unsigned).startswith("algorithm not allowed")
    # PyJWT will not sign with a JWK as an HMAC secret: by hand, as an attacker would
    header = {"alg": "HS256", "kid": "rsa-1", "typ": "JWT"}
    claims = {"sub": "u1", "aud": AUD, "iss": ISS, "exp": int(time.time()) + 60}
    signed = b".".join(b64(json.dumps(part).encode()) for part in (header, claims))
    mac = hmac.new(json.dumps(jwk).encode(), signed, hashlib.sha256).digest()
    confused = (signed + b"." + b64(mac)).decode()
    assert reason(v, confused).startswith("algorithm not allowed")
    assert v.verify(token(signer)).subject == "u1"


def test_a_header_that_is_not_bearer_is_refused() -> None:
    v = verifier()
    for header in ("Basic dTE6cHc=", "Bearer", "Bearer  ", "token"):
        with pytest.raises(Unauthenticated, match="expected 'Authorization: Bearer <token>'"):
            v.authenticate(header)


# -- policy -------------------------------------------------------------------------------------

RULES = AccessRules(anonymous_catalog=False, open_metrics=True)
OWNER = Principal(subject="u1", scopes=frozenset({CATALOG_READ, LISTEN}))


def outcome(policy: Policy, caller: Principal, rules: AccessRules = RULES, user: str = "u1") -> str:
    try:
        auth.authorize(policy, caller, rules=rules, user_id=user)
    except Unauthenticated as e:
        assert not e.token_sent and e.headers == {"WWW-Authenticate": 'Bearer realm="segue"'}
        return "401"
    except InsufficientScope as e:
        assert e.headers["WWW-Authenticate"].endswith(
            f'error="insufficient_scope", scope="{e.scope}"'
        )
        return f"403 {e.scope}"
    except Forbidden:
        return "403"
    return "ok"


def test_the_policy_of_each_kind_of_route() -> None:
    callers = {
        "anonymous": ANONYMOUS,
        "catalog only": Principal(subject="u1", scopes=frozenset({CATALOG_READ})),
        "listen only": Principal(subject="u1", scopes=frozenset({LISTEN})),
        "owner": OWNER,
        "other user": Principal(subject="u2", scopes=frozenset({CATALOG_READ, LISTEN})),
        "admin": Principal(subject="ops", scopes=frozenset({ADMIN})),
    }
    expected = {
        Policy.OPEN: ["ok", "ok", "ok", "ok", "ok", "ok"],
        Policy.METRICS: ["ok", "ok", "ok", "ok", "ok", "ok"],
        Policy.CATALOG: ["401", "ok", "403 catalog:read", "ok", "ok", "ok"],
        Policy.USER: ["401", "403 listen", "ok", "ok", "403", "ok"],
        Policy.LISTENER: ["401", "403 listen", "ok", "ok", "ok", "ok"],
        Policy.ADMIN: ["401", "403 admin", "403 admin", "403 admin", "403 admin", "ok"],
    }
    for policy, answers in expected.items():
        assert [outcome(policy, c) for c in callers.values()] == answers, policy
    closed = AccessRules(anonymous_catalog=True, open_metrics=False)
    assert outcome(Policy.CATALOG, ANONYMOUS, closed) == "ok"
    assert outcome(Policy.METRICS, ANONYMOUS, closed) == "401"
    assert outcome(Policy.METRICS, OWNER, closed) == "403 admin"
    assert outcome(Policy.METRICS, callers["admin"], closed) == "ok"


def test_stations_belong_to_their_user_an_admin_sees_all() -> None:
    assert auth.owner_of(OWNER) == "u1"
    assert auth.owner_of(Principal(subject="ops", scopes=frozenset({ADMIN}))) is None
    assert auth.owner_of(UNCHECKED) is None
    auth.check_acting_for(OWNER, user_id="u1")
    with pytest.raises(Forbidden, match="cannot create a station for 'u2'"):
        auth.check_acting_for(OWNER, user_id="u2")
    auth.check_acting_for(Principal(subject="ops", scopes=frozenset({ADMIN})), user_id="u2")


# -- the gate -----------------------------------------------------------------------------------


def test_auth_off_lets_everything_through() -> None:
    gate = Gate.of(Settings(auth="off"))
    for policy in Policy:
        assert gate.admit(policy, authorization="Bearer junk", address="a") is UNCHECKED


def test_the_gate_limits_each_subject_and_each_address_on_its_own() -> None:
    gate = Gate.of(settings(auth_secrets=f"k1:{SECRET_1}", rate_limit_per_second=1.0,
                            rate_limit_burst=3, rate_limit_anonymous_per_second=0.5))  # fmt: skip
    k1 = hs_keys()[1]
    u1, u2 = f"Bearer {token(k1, sub='u1')}", f"Bearer {token(k1, sub='u2')}"
    for _ in range(3):
        gate.admit(Policy.LISTENER, authorization=u1, address="a", now=100.0)
    with pytest.raises(TooManyRequests) as e:
        gate.admit(Policy.LISTENER, authorization=u1, address="b", now=100.0)  # any address
    assert e.value.status_code == 429 and e.value.headers == {"Retry-After": "1"}
    gate.admit(Policy.LISTENER, authorization=u2, address="a", now=100.0)  # another subject
    gate.admit(Policy.LISTENER, authorization=u1, address="a", now=101.0)  # a second later
    # without a valid token: per address, at the anonymous rate; a bad token counts there too
    for _ in range(3):
        with pytest.raises(Unauthenticated):
            gate.admit(Policy.CATALOG, authorization="Bearer junk", address="c", now=100.0)
    with pytest.raises(TooManyRequests) as e:
        gate.admit(Policy.CATALOG, authorization=None, address="c", now=100.0)
    assert e.value.retry_after == 2  # a token every 2 s
    with pytest.raises(Unauthenticated):  # another address has its own bucket
        gate.admit(Policy.CATALOG, authorization=None, address="d", now=100.0)
    # the open routes are not limited
    for _ in range(10):
        assert gate.admit(Policy.OPEN, authorization=None, address="c", now=100.0) is ANONYMOUS
        assert gate.admit(Policy.METRICS, authorization=None, address="c", now=100.0) is ANONYMOUS


def test_an_anonymous_catalogue_still_limits_and_refuses_bad_tokens() -> None:
    gate = Gate.of(settings(auth_secrets=f"k1:{SECRET_1}", auth_anonymous_catalog=True,
                            rate_limit_burst=2, rate_limit_anonymous_per_second=0.5))  # fmt: skip
    for _ in range(2):
        assert gate.admit(Policy.CATALOG, authorization=None, address="e", now=0.0) is ANONYMOUS
    with pytest.raises(TooManyRequests):
        gate.admit(Policy.CATALOG, authorization=None, address="e", now=0.0)
    with pytest.raises(Unauthenticated, match="malformed token"):
        gate.admit(Policy.CATALOG, authorization="Bearer junk", address="f", now=0.0)
    caller = gate.admit(Policy.CATALOG, authorization=f"Bearer {token(hs_keys()[1], scope='listen')}",
                        address="e", now=0.0)  # fmt: skip
    assert caller.subject == "u1"  # no catalog:read needed, but the token is the caller


def test_a_verified_token_is_remembered_only_within_its_time() -> None:
    """The second time, a token is not decoded again, but its expiry still holds."""
    _, k1 = hs_keys()
    v = Verifier([k1], audience=AUD, issuer=ISS, leeway_seconds=0)
    raw = token(k1, exp=int(time.time()) + 2)
    assert v.verify(raw).subject == "u1"
    assert v.verify(raw).subject == "u1" and raw in v._verified
    head, body, signature = raw.split(".")
    tampered = f"{head}.{body}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    assert reason(v, tampered) in ("bad signature", "malformed token")
    time.sleep(max(0.0, int(time.time()) + 2 - time.time()) + 1.1)  # past exp
    assert reason(v, raw) == "token expired"
    assert raw not in v._verified
