"""Who calls, and what they may do: bearer JWTs and the access policy of every route.

Plain Python (no FastAPI): `service/api/access.py` turns `Gate.admit` into one dependency per
route, and the tests call it directly.

- **Keys** (`load_keys`): HS256 shared secrets (`SEGUE_AUTH_SECRETS` or `_FILE`) and/or a JWKS
  file of RS256/ES256 public keys (`SEGUE_AUTH_JWKS_FILE`), each with a `kid`: a token names the
  key it was signed with, so during a rotation the old and the new key both verify.
- **Tokens** (`Verifier`): PyJWT checks the signature with the algorithm pinned to the key (a
  token cannot pick another), `exp` (required) and `nbf` with `SEGUE_AUTH_LEEWAY_SECONDS`,
  `aud` and `iss` against the settings; `sub` (required) is the user id, `scope` holds the
  scopes, space-separated (OAuth 2.0).
- **Policy** (`authorize`): what each `Policy` asks of a caller. Station ownership is checked
  where the station is read (`service/stations.py`, `owner=`): someone else's station is a 404.
"""

from __future__ import annotations

import enum
import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from service.errors import Forbidden, InsufficientScope, TooManyRequests, Unauthenticated
from service.rate_limit import TokenBuckets
from service.settings import Settings

log = logging.getLogger("segue")

CATALOG_READ = "catalog:read"
LISTEN = "listen"
ADMIN = "admin"
SCOPES = (CATALOG_READ, LISTEN, ADMIN)

HS256 = "HS256"
PUBLIC_ALGORITHMS = frozenset({"RS256", "ES256"})  # what a JWKS key may use
MIN_SECRET_BYTES = 32  # RFC 7518 3.2: an HS256 key at least as long as the hash
# the most buckets a worker keeps (about 150 bytes each); beyond, the least recently used go
RATE_LIMIT_KEYS = 100_000
# verified tokens a worker remembers (about 1 KB each), least recently used dropped first
VERIFIED_TOKENS = 10_000


class AuthConfigError(ValueError):
    """Keys that cannot be used, named by the setting that gave them."""


class Policy(enum.Enum):
    """What a route asks of its caller."""

    OPEN = "open"  # anyone: the probes, the OpenAPI contract
    METRICS = "metrics"  # anyone with SEGUE_AUTH_OPEN_METRICS (default), else `admin`
    CATALOG = "catalog"  # `catalog:read` (or anyone with SEGUE_AUTH_ANONYMOUS_CATALOG)
    USER = "user"  # `listen`, and the path's {user_id} is the token's `sub`; `admin`: any user
    LISTENER = "listener"  # `listen` (a station: only its owner's, see `owner_of`); `admin`: any
    ADMIN = "admin"  # `admin`


@dataclass(frozen=True)
class Principal:
    """The caller: `subject` is the token's `sub` (None without a valid token)."""

    subject: str | None
    scopes: frozenset[str]

    @property
    def admin(self) -> bool:
        return ADMIN in self.scopes


ANONYMOUS = Principal(subject=None, scopes=frozenset())
UNCHECKED = Principal(subject=None, scopes=frozenset({ADMIN}))  # SEGUE_AUTH=off: anything goes


@dataclass(frozen=True)
class Key:
    kid: str
    algorithm: str
    key: Any  # bytes (HS256) or a jwt.PyJWK (public)


# -- keys -------------------------------------------------------------------------------------


def parse_secrets(text: str, *, source: str) -> list[Key]:
    """`KID:SECRET` entries separated by spaces, commas or new lines, in their order."""
    keys = []
    for n, entry in enumerate(e for e in re.split(r"[\s,]+", text) if e):
        kid, sep, secret = entry.partition(":")
        if not sep or not kid or not secret:
            raise AuthConfigError(f"{source}: entry {n + 1} is not KID:SECRET")
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise AuthConfigError(
                f"{source}: the secret of key {kid!r} is shorter than {MIN_SECRET_BYTES} bytes "
                "(make one with `openssl rand -hex 32`)"
            )
        keys.append(Key(kid=kid, algorithm=HS256, key=secret.encode()))
    return keys


def parse_jwks(text: str, *, source: str) -> list[Key]:
    """The public keys of a JWKS document; every key needs a `kid` and RS256 or ES256."""
    try:
        data = json.loads(text)
        entries = data["keys"]
        assert isinstance(entries, list)
    except (ValueError, KeyError, TypeError, AssertionError):
        raise AuthConfigError(f'{source}: not a JWKS document ({{"keys": [...]}})') from None
    try:
        keyset = jwt.PyJWKSet(entries)
    except jwt.PyJWKSetError as e:
        raise AuthConfigError(f"{source}: {e}") from None
    if len(keyset.keys) != len(entries):  # PyJWKSet leaves out the keys it cannot use
        usable = {k.key_id for k in keyset.keys}
        bad = [e.get("kid") for e in entries if e.get("kid") not in usable]
        raise AuthConfigError(f"{source}: unusable keys {bad}")
    keys = []
    for k in keyset.keys:
        if not k.key_id:
            raise AuthConfigError(f"{source}: every key needs a kid")
        if k.algorithm_name not in PUBLIC_ALGORITHMS:
            raise AuthConfigError(
                f"{source}: key {k.key_id!r} is {k.algorithm_name}; one of "
                f"{sorted(PUBLIC_ALGORITHMS)} (HS256 secrets go in SEGUE_AUTH_SECRETS)"
            )
        keys.append(Key(kid=k.key_id, algorithm=k.algorithm_name, key=k))
    return keys


def _read(path: Path, *, setting: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise AuthConfigError(f"{setting}={path}: {e.strerror or e}") from None


def load_keys(settings: Settings) -> list[Key]:
    """Every verification key the settings give, HS256 secrets first; AuthConfigError if there
    is none (with SEGUE_AUTH=jwt) or one is bad or two share a kid."""
    keys: list[Key] = []
    if settings.auth_secrets is not None:
        keys += parse_secrets(settings.auth_secrets.get_secret_value(), source="SEGUE_AUTH_SECRETS")
    if settings.auth_secrets_file is not None:
        text = _read(settings.auth_secrets_file, setting="SEGUE_AUTH_SECRETS_FILE")
        keys += parse_secrets(text, source=f"SEGUE_AUTH_SECRETS_FILE={settings.auth_secrets_file}")
    if settings.auth_jwks_file is not None:
        text = _read(settings.auth_jwks_file, setting="SEGUE_AUTH_JWKS_FILE")
        keys += parse_jwks(text, source=f"SEGUE_AUTH_JWKS_FILE={settings.auth_jwks_file}")
    if not keys:
        raise AuthConfigError(
            "SEGUE_AUTH=jwt needs keys: SEGUE_AUTH_SECRETS, SEGUE_AUTH_SECRETS_FILE or "
            "SEGUE_AUTH_JWKS_FILE (or SEGUE_AUTH=off, which lets every caller do anything)"
        )
    kids = [k.kid for k in keys]
    if len(set(kids)) != len(kids):
        raise AuthConfigError(f"two keys share a kid: {sorted(kids)}")
    return keys


# -- tokens -----------------------------------------------------------------------------------


class Verifier:
    """Turns a bearer token into a Principal, or raises Unauthenticated saying why (never with
    the token's contents).

    A client sends the same token with every request until it expires, and checking one costs
    more than a cached similar-tracks answer (loadtest/README.md, bench_auth), so each worker
    remembers the tokens it verified: the same string verifies the same way against the same
    keys (read once at start), and only its time window is checked again. Refusals are not
    remembered."""

    def __init__(
        self, keys: list[Key], *, audience: str, issuer: str, leeway_seconds: float
    ) -> None:
        self.keys = {k.kid: k for k in keys}
        self.audience, self.issuer, self.leeway = audience, issuer, leeway_seconds
        # token -> (caller, valid from, valid until), leeway included
        self._verified: OrderedDict[str, tuple[Principal, float, float]] = OrderedDict()

    def verify(self, token: str) -> Principal:
        known = self._verified.get(token)
        if known is not None:
            caller, valid_from, valid_until = known
            if valid_from <= time.time() < valid_until:
                self._verified.move_to_end(token)
                return caller
            del self._verified[token]  # out of its window: decoded again, to say why
        caller, claims = self._decode(token)
        nbf, exp = claims.get("nbf"), claims["exp"]
        valid_from = float(nbf) - self.leeway if isinstance(nbf, int | float) else float("-inf")
        self._verified[token] = (caller, valid_from, float(exp) + self.leeway)
        if len(self._verified) > VERIFIED_TOKENS:
            self._verified.popitem(last=False)
        return caller

    def _decode(self, token: str) -> tuple[Principal, dict[str, Any]]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise _invalid("malformed token") from None
        kid = header.get("kid")
        if kid is None and len(self.keys) == 1:  # one key: a token may leave its kid out
            kid = next(iter(self.keys))
        key = self.keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise _invalid("unknown key id (kid)")
        try:
            claims = jwt.decode(
                token, key.key, algorithms=[key.algorithm], audience=self.audience,
                issuer=self.issuer, leeway=self.leeway,
                options={"require": ["exp", "sub"]},
            )  # fmt: skip
        except jwt.ExpiredSignatureError:
            raise _invalid("token expired") from None
        except jwt.ImmatureSignatureError:
            raise _invalid("token not valid yet (nbf)") from None
        except jwt.InvalidSignatureError:
            raise _invalid("bad signature") from None
        except jwt.InvalidAlgorithmError:
            raise _invalid(
                f"algorithm not allowed for this key (expected {key.algorithm})"
            ) from None
        except jwt.InvalidAudienceError:
            raise _invalid(f"wrong audience (expected {self.audience!r})") from None
        except jwt.InvalidIssuerError:
            raise _invalid(f"wrong issuer (expected {self.issuer!r})") from None
        except jwt.MissingRequiredClaimError as e:
            raise _invalid(f"the token has no {e.claim!r} claim") from None
        except jwt.InvalidTokenError:
            raise _invalid("malformed token") from None
        return Principal(subject=_subject(claims), scopes=_scopes(claims)), claims

    def authenticate(self, authorization: str | None) -> Principal:
        """The caller of an `Authorization` header value: ANONYMOUS without one."""
        if authorization is None:
            return ANONYMOUS
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _invalid("expected 'Authorization: Bearer <token>'")
        return self.verify(token.strip())


def _invalid(description: str) -> Unauthenticated:
    return Unauthenticated(description, token_sent=True)


def _subject(claims: Mapping[str, Any]) -> str:
    sub = claims["sub"]
    if not isinstance(sub, str) or not sub or len(sub) > 256:
        raise _invalid("'sub' must be a user id (1 to 256 characters)")
    return sub


def _scopes(claims: Mapping[str, Any]) -> frozenset[str]:
    scope = claims.get("scope", "")
    if isinstance(scope, str):
        return frozenset(scope.split())
    if isinstance(scope, list) and all(isinstance(s, str) for s in scope):
        return frozenset(scope)
    raise _invalid("'scope' must be a space-separated string")


def mint(
    key: Key, *, subject: str, scopes: list[str], ttl_seconds: int, audience: str, issuer: str,
    now: float | None = None,
) -> str:  # fmt: skip
    """A token signed with an HS256 key (`segue token`, the demo, the tests)."""
    at = int(time.time() if now is None else now)
    claims = {"sub": subject, "scope": " ".join(scopes), "aud": audience, "iss": issuer,
              "iat": at, "nbf": at, "exp": at + ttl_seconds}  # fmt: skip
    return jwt.encode(claims, key.key, algorithm=key.algorithm, headers={"kid": key.kid})


# -- policy -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class AccessRules:
    """The settings of the policy: `AccessRules.of(settings)`."""

    anonymous_catalog: bool
    open_metrics: bool

    @classmethod
    def of(cls, settings: Settings) -> AccessRules:
        return cls(
            anonymous_catalog=settings.auth_anonymous_catalog,
            open_metrics=settings.auth_open_metrics,
        )


def needs_token(policy: Policy, rules: AccessRules) -> bool:
    """Whether the policy refuses a caller without a token."""
    return not (
        policy is Policy.OPEN
        or (policy is Policy.METRICS and rules.open_metrics)
        or (policy is Policy.CATALOG and rules.anonymous_catalog)
    )


def authorize(
    policy: Policy, caller: Principal, *, rules: AccessRules, user_id: str | None = None
) -> None:
    """Raises what the caller gets when the policy refuses them: 401 (no token), 403."""
    if not needs_token(policy, rules) or caller.admin:
        return
    if caller.subject is None:
        raise Unauthenticated("this needs a bearer token", token_sent=False)
    if policy in (Policy.ADMIN, Policy.METRICS):
        raise InsufficientScope(ADMIN)
    if policy is Policy.CATALOG:
        if CATALOG_READ not in caller.scopes:
            raise InsufficientScope(CATALOG_READ)
        return
    if LISTEN not in caller.scopes:
        raise InsufficientScope(LISTEN)
    if policy is Policy.USER and user_id != caller.subject:
        raise Forbidden(f"a token of user {caller.subject!r} is not for user {user_id!r}")


def owner_of(caller: Principal) -> str | None:
    """Whose stations the caller may see: their own (`sub`); None for an admin: anyone's."""
    return None if caller.admin else caller.subject


def check_acting_for(caller: Principal, *, user_id: str) -> None:
    """A station is created for the caller's own user id (an admin: for anyone)."""
    if not caller.admin and user_id != caller.subject:
        raise Forbidden(
            f"a token of user {caller.subject!r} cannot create a station for {user_id!r}"
        )


# -- one request ------------------------------------------------------------------------------


class Gate:
    """Everything a request goes through before its route: who calls (the token), how often
    (the rate limit: per subject, or per client address without a valid token) and whether the
    route's policy lets them. `Gate.of(settings)`; SEGUE_AUTH=off lets everything through."""

    def __init__(
        self, *, verifier: Verifier | None, rules: AccessRules, subjects: TokenBuckets | None,
        addresses: TokenBuckets | None,
    ) -> None:  # fmt: skip
        self.verifier, self.rules = verifier, rules
        self.subjects, self.addresses = subjects, addresses

    @classmethod
    def of(cls, settings: Settings) -> Gate:
        rules = AccessRules.of(settings)
        if settings.auth == "off":
            return cls(verifier=None, rules=rules, subjects=None, addresses=None)
        verifier = Verifier(
            load_keys(settings), audience=settings.auth_audience, issuer=settings.auth_issuer,
            leeway_seconds=settings.auth_leeway_seconds,
        )  # fmt: skip
        return cls(
            verifier=verifier, rules=rules,
            subjects=_buckets(settings.rate_limit_per_second, settings.rate_limit_burst),
            addresses=_buckets(settings.rate_limit_anonymous_per_second, settings.rate_limit_burst),
        )  # fmt: skip

    def admit(
        self, policy: Policy, *, authorization: str | None, address: str | None,
        user_id: str | None = None, now: float | None = None,
    ) -> Principal:  # fmt: skip
        """The caller, once they may go on; else raises 401, 403 or 429."""
        if self.verifier is None:
            return UNCHECKED
        if policy is Policy.OPEN or (policy is Policy.METRICS and self.rules.open_metrics):
            return ANONYMOUS  # the probes and the scraper: no token, no limit
        # (an anonymous catalogue still counts its callers, and refuses a bad token)
        refused: Unauthenticated | None = None
        try:
            caller = self.verifier.authenticate(authorization)
        except Unauthenticated as e:
            caller, refused = ANONYMOUS, e
        t = time.monotonic() if now is None else now
        if caller.subject is not None:
            self._limit(self.subjects, key=caller.subject, now=t)
        else:  # a bad token counts against its address too: no free guessing
            self._limit(self.addresses, key=address or "", now=t)
        if refused is not None:
            raise refused
        authorize(policy, caller, rules=self.rules, user_id=user_id)
        return caller

    @staticmethod
    def _limit(buckets: TokenBuckets | None, *, key: str, now: float) -> None:
        if buckets is None:
            return
        wait = buckets.take(key, now=now)
        if wait > 0:
            raise TooManyRequests(retry_after=max(1, int(wait + 0.999)))


def _buckets(per_second: float, burst: int) -> TokenBuckets | None:
    if per_second <= 0:
        return None
    return TokenBuckets(per_second=per_second, burst=burst, max_keys=RATE_LIMIT_KEYS)
