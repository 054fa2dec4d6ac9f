"""The store URL a setting names: `sqlite:///PATH` or `cassandra://HOST[,HOST]:PORT/KEYSPACE`."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


class StoreConfigError(ValueError):
    """A store URL or setting that cannot work."""


@dataclass(frozen=True)
class StoreUrl:
    scheme: str  # "sqlite" | "cassandra"
    path: str = ""  # sqlite: the database file
    hosts: tuple[str, ...] = ()  # cassandra: contact points
    port: int = 9042
    keyspace: str = "segue"

    def display(self) -> str:
        if self.scheme == "sqlite":
            return f"sqlite:///{self.path}"
        return f"cassandra://{','.join(self.hosts)}:{self.port}/{self.keyspace}"


def parse_store_url(url: str) -> StoreUrl:
    """`sqlite:///relative.db`, `sqlite:////abs/path.db`, `cassandra://h1,h2:9042/keyspace`."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else ""
        if not path or parts.netloc:
            raise StoreConfigError(
                f"bad store URL {url!r}: use sqlite:///relative/path.db or sqlite:////absolute/path.db"
            )
        return StoreUrl(scheme="sqlite", path=path)
    if parts.scheme == "cassandra":
        netloc = parts.netloc.rsplit("@", 1)[-1]  # credentials come from settings, not the URL
        hostpart, _, port_text = netloc.rpartition(":") if ":" in netloc else (netloc, "", "")
        try:
            port = int(port_text) if port_text else 9042
        except ValueError:
            raise StoreConfigError(
                f"bad store URL {url!r}: port {port_text!r} is not a number"
            ) from None
        hosts = tuple(h for h in hostpart.split(",") if h)
        keyspace = parts.path.strip("/") or "segue"
        if not hosts:
            raise StoreConfigError(
                f"bad store URL {url!r}: no host (cassandra://HOST[,HOST]:PORT/KEYSPACE)"
            )
        if not keyspace.replace("_", "").isalnum() or keyspace[0].isdigit() or len(keyspace) > 48:
            raise StoreConfigError(
                f"bad store URL {url!r}: keyspace {keyspace!r} must be letters, digits and _ "
                "(not starting with a digit, at most 48)"
            )
        if not 1 <= port <= 65535:
            raise StoreConfigError(f"bad store URL {url!r}: port {port} out of range")
        return StoreUrl(scheme="cassandra", hosts=hosts, port=port, keyspace=keyspace)
    raise StoreConfigError(f"bad store URL {url!r}: the scheme must be sqlite:// or cassandra://")
