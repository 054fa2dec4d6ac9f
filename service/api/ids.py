"""Ids in URL paths: any printable string, percent-encoded by the client as one path segment.

Real ids hold `/`, `%`, `?`, `#`, spaces and any unicode, so a client sends each one
percent-encoded (`a/b` as `a%2Fb`, `50%` as `50%25`, `Zoë` as `Zo%C3%AB`). uvicorn decodes
`scope["path"]` before routing, which would turn `/v1/tracks/a%2Fsimilar` into
`/v1/tracks/a/similar`: the similar tracks of `a` rather than the track `a/similar`. So:

- `RouteOnRawPath` (middleware) hands the router the path as the client sent it (`raw_path`, still
  percent-encoded), and
- every id parameter is declared `{name:id}`: one path segment (`[^/]+`, so `/v1/tracks/{id}` and
  `/v1/tracks/{id}/similar` never overlap), percent-decoded (UTF-8) into the exact id.

An unencoded `/` is a path separator: `/v1/tracks/a/b` is no route (404 `Not Found`), not the
track `a/b`. FastAPI documents `{name:id}` parameters as plain `{name}` strings in the OpenAPI.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, unquote

from fastapi import Path
from starlette.convertors import Convertor, register_url_convertor

# what may stay unencoded in a path (RFC 3986 pchar and "/"), and "%" of the existing escapes
_PATH_SAFE = "/%:@!$&'()*+,;="


class IdConvertor(Convertor[str]):
    """One percent-encoded path segment, decoded (UTF-8) into the exact id."""

    regex = "[^/]+"

    def convert(self, value: str) -> str:
        return unquote(value)

    def to_string(self, value: str) -> str:
        return quote(value, safe="")


register_url_convertor("id", IdConvertor())

_ENCODED = "exact, percent-encoded as one path segment (`a/b` as `a%2Fb`, `50%` as `50%25`)"

# the id path parameters of the routers (declared `{name:id}` in the route's path)
TrackId = Annotated[str, Path(min_length=1, max_length=256, description=f"track id, {_ENCODED}")]
ArtistId = Annotated[str, Path(min_length=1, max_length=256, description=f"artist id, {_ENCODED}")]
UserId = Annotated[str, Path(min_length=1, max_length=256, description=f"user id, {_ENCODED}")]
StationId = Annotated[str, Path(min_length=1, max_length=64, description="station id")]


def routing_path(scope: dict[str, Any]) -> str:
    """The request's path, percent-encoded as the client sent it (`raw_path`, without the query).

    Bytes that a path may not hold unencoded (non-ASCII, controls, quotes, braces...) are encoded,
    so that decoding a segment gives what the client meant. Without `raw_path` (an ASGI
    server that does not send it) the decoded path is encoded again: its `/` all separate."""
    raw = scope.get("raw_path")
    root: str = scope.get("root_path", "")
    if not raw:
        path: str = scope["path"]
        if root and path.startswith(root):
            return root + quote(path[len(root) :], safe=_PATH_SAFE)
        return quote(path, safe=_PATH_SAFE)
    raw = bytes(raw).partition(b"?")[0]
    root_bytes = root.encode("utf-8")
    if root and raw.startswith(root_bytes):
        return root + quote(raw[len(root_bytes) :], safe=_PATH_SAFE)
    return quote(raw, safe=_PATH_SAFE)


class RouteOnRawPath:
    """Routes HTTP requests on their percent-encoded path (pure ASGI; see the module docstring).

    `scope["path"]` stays encoded for the rest of the request, so path parameters must use the
    `id` convertor (every id route does), which decodes them."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            # in place: the middleware around this one reads what routing adds to the scope
            # ("route", the bundle version)
            scope["path"] = routing_path(scope)
        await self.app(scope, receive, send)
