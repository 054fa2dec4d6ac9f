"""Opens the store a URL names: `sqlite:///path.db` or `cassandra://host:port/keyspace`."""

from __future__ import annotations

from pathlib import Path

from service.store.base import Store, StoreOptions, parse_store_url


def open_store(
    url: str, *, options: StoreOptions | None = None, apply_schema: bool = True
) -> Store:
    """The store at `url`. Cassandra connects lazily (the first call), so a worker can start
    while Cassandra is down; SQLite opens the file and applies its schema at once."""
    parsed = parse_store_url(url)
    if parsed.scheme == "sqlite":
        from service.store.sqlite import SqliteStore

        return SqliteStore(path=Path(parsed.path), options=options)
    from service.store.cassandra import CassandraStore

    return CassandraStore(url=parsed, options=options, apply_schema=apply_schema)
