"""The access policy of a route, as a FastAPI dependency: `Depends(Requires(Policy.X))`.

Thin: `service.auth.Gate.admit` decides (token, rate limit, policy); this hands it the request's
`Authorization` header, client address and `{user_id}`, and gives the route the caller. The
policy test (tests/service/api/test_access.py) finds each route's `Requires` here and holds it
to a declared table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from service.api import schemas
from service.auth import AccessRules, Gate, Policy, Principal, needs_token

SCHEME = "bearer"


class Requires:
    """The dependency of a route with `policy`: the caller, once admitted."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    async def __call__(self, request: Request) -> Principal:
        gate: Gate = request.app.state.gate
        client = request.client
        return gate.admit(
            self.policy,
            authorization=request.headers.get("authorization"),
            address=client.host if client is not None else None,
            user_id=request.path_params.get("user_id"),
        )

    def __repr__(self) -> str:
        return f"Requires({self.policy})"


# one instance per policy: FastAPI runs a dependency once per request (a router's and a
# route's the same), and the policy test finds them by identity
CATALOG = Requires(Policy.CATALOG)
USER = Requires(Policy.USER)
LISTENER = Requires(Policy.LISTENER)
ADMIN = Requires(Policy.ADMIN)
METRICS = Requires(Policy.METRICS)

Listener = Annotated[Principal, Depends(LISTENER)]


def policy_of(route: Any) -> Policy | None:
    """The policy a route declares (its own or its router's `Requires`), None if none: of an
    APIRoute, or a route as the app serves it (`fastapi.routing.iter_route_contexts`)."""
    found = {d.call.policy for d in route.dependant.dependencies if isinstance(d.call, Requires)}
    if len(found) > 1:
        raise ValueError(f"{route.path}: more than one policy {found}")
    return found.pop() if found else None


_ANSWERS = {
    401: "no token, or a malformed, expired or badly signed one (`WWW-Authenticate` says why)",
    403: 'a valid token without the scope (`WWW-Authenticate: Bearer error="insufficient_scope"`) '
    "or for another user",
    429: "rate limit: retry after the `Retry-After` header's seconds",
}


def document_security(
    openapi: dict[str, Any], *, routes: Sequence[BaseRoute], rules: AccessRules, enabled: bool
) -> None:
    """The bearer scheme in the app's OpenAPI, and on each operation whose policy needs a token
    the scheme, the scope and the 401/403/429 answers."""
    if not enabled:
        return
    openapi.setdefault("components", {}).setdefault("securitySchemes", {})[SCHEME] = {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": "a JWT with `sub` (the user id) and `scope` (catalog:read, listen, admin)",
    }  # fmt: skip
    problem = {"$ref": "#/components/schemas/Problem"}
    openapi["components"].setdefault("schemas", {}).setdefault(
        "Problem", schemas.Problem.model_json_schema()
    )
    for route in routes:
        if not isinstance(route, APIRoute) or (policy := policy_of(route)) is None:
            continue
        if not needs_token(policy, rules):
            continue
        for method in route.methods or ():
            operation = openapi["paths"][route.path_format][method.lower()]
            operation["security"] = [{SCHEME: []}]
            responses = operation.setdefault("responses", {})
            for status, description in _ANSWERS.items():
                responses.setdefault(
                    str(status),
                    {"description": description,
                     "content": {"application/json": {"schema": problem}}},
                )  # fmt: skip
