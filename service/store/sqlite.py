"""The embedded store: one SQLite file, for a single machine and for the demo.

Several worker processes share the file (WAL mode); each thread has its own connection.
The schema is versioned with `PRAGMA user_version` and applied idempotently at open.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from service.settings import Settings, StoreOptions
from service.store.base import (
    TABLES,
    EventRecord,
    Ranked,
    StoredStation,
    StoreUnavailable,
    decode_stored,
    encode_list,
    table_of,
)

# (version, statements): applied in order, each at most once
SCHEMA: list[tuple[int, list[str]]] = [
    (
        1,
        [
            """CREATE TABLE IF NOT EXISTS radio_neighbours (
                bundle_version TEXT NOT NULL, track_id TEXT NOT NULL,
                ids TEXT NOT NULL, scores TEXT NOT NULL, rows TEXT, computed_at REAL NOT NULL,
                PRIMARY KEY (bundle_version, track_id)) WITHOUT ROWID""",
            """CREATE TABLE IF NOT EXISTS related_artists (
                bundle_version TEXT NOT NULL, artist_id TEXT NOT NULL,
                ids TEXT NOT NULL, scores TEXT NOT NULL, rows TEXT, computed_at REAL NOT NULL,
                PRIMARY KEY (bundle_version, artist_id)) WITHOUT ROWID""",
            """CREATE TABLE IF NOT EXISTS precompute_progress (
                bundle_version TEXT NOT NULL, task TEXT NOT NULL, chunk INTEGER NOT NULL,
                items INTEGER NOT NULL, done_at REAL NOT NULL,
                PRIMARY KEY (bundle_version, task, chunk)) WITHOUT ROWID""",
        ],
    ),
]
SCHEMA.append(
    (
        2,
        [
            """CREATE TABLE IF NOT EXISTS stations (
                station_id TEXT PRIMARY KEY, state TEXT NOT NULL, revision INTEGER NOT NULL,
                expires_at REAL NOT NULL)""",
            """CREATE TABLE IF NOT EXISTS station_events (
                station_id TEXT NOT NULL, event_id TEXT NOT NULL, user_id TEXT NOT NULL,
                variant TEXT NOT NULL, bundle_version TEXT NOT NULL, track_id TEXT NOT NULL,
                kind TEXT NOT NULL, at REAL NOT NULL,
                PRIMARY KEY (station_id, event_id)) WITHOUT ROWID""",
        ],
    )
)
SCHEMA.append(
    (
        3,
        [
            # lists as one blob each (`encode_list`); the lists of the old layout are dropped, not
            # converted: they are recomputed on a miss or by `segue precompute`, whose progress
            # is cleared with them so that it writes them again
            "DROP TABLE IF EXISTS radio_neighbours",
            "DROP TABLE IF EXISTS related_artists",
            "DELETE FROM precompute_progress",
            *(
                f"""CREATE TABLE {table} (
                bundle_version TEXT NOT NULL, {column} TEXT NOT NULL, ranked BLOB NOT NULL,
                computed_at REAL NOT NULL, PRIMARY KEY (bundle_version, {column})) WITHOUT ROWID"""
                for table, column in TABLES.values()
            ),
        ],
    )
)
_IN_LIMIT = 500  # ids per SELECT ... IN (...), well under SQLite's parameter limit
SCHEMA_VERSION = SCHEMA[-1][0]


class SqliteStore:
    """`clock`: the time (unix seconds) the store records and counts station expiry in."""

    def __init__(
        self, *, path: Path, options: StoreOptions | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        self.path = path
        self.options = options or Settings.defaults().store_options()
        self.clock = clock
        self._local = threading.local()
        self._lock = threading.Lock()
        # one writer per process at a time: the threads of a worker queue here instead of in
        # SQLite's busy handler, which sleeps with a growing back-off between its tries (what
        # py-spy showed under station load: loadtest/README.md, bench_stations.py)
        self._write_lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._closed = False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreUnavailable(f"sqlite store {path}: {e}") from e
        with self._errors():
            self._migrate(self._connection())

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreUnavailable(f"sqlite store {self.path} is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path,
                timeout=self.options.timeout_seconds,
                isolation_level=None,  # autocommit; explicit BEGIN where a transaction is needed
                check_same_thread=False,  # close() runs on another thread
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """The connection, with this process's write lock held (and errors translated)."""
        with self._errors():
            if not self._write_lock.acquire(timeout=self.options.timeout_seconds):
                raise StoreUnavailable(
                    f"sqlite store {self.path}: no write slot within "
                    f"{self.options.timeout_seconds:g} s", down=False,
                )  # fmt: skip
            try:
                yield self._connection()
            finally:
                self._write_lock.release()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as e:  # locked, unreadable, disk full, I/O error
            # a lock held past the timeout is one slow request; the rest means the file is unusable
            busy = e.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
            raise StoreUnavailable(f"sqlite store {self.path}: {e}", down=not busy) from e

    @staticmethod
    @contextmanager
    def _transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE (the write lock at once) ... COMMIT, or ROLLBACK on any error."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _migrate(self, conn: sqlite3.Connection) -> None:
        with self._transaction(conn):
            have = conn.execute("PRAGMA user_version").fetchone()[0]
            if have > SCHEMA_VERSION:
                raise StoreUnavailable(
                    f"sqlite store {self.path} has schema version {have}, newer than this "
                    f"segue's {SCHEMA_VERSION}; upgrade segue"
                )
            for version, statements in SCHEMA:
                if version > have:
                    for statement in statements:
                        conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {int(version)}")

    def ping(self) -> None:
        with self._errors():
            self._connection().execute("SELECT 1").fetchone()

    def get(self, *, kind: str, version: str, key: str) -> Ranked | None:
        return self.get_many(kind=kind, version=version, keys=[key]).get(key)

    async def get_async(self, *, kind: str, version: str, key: str) -> Ranked | None:
        # sqlite3 blocks: its read waits on a thread
        return await asyncio.to_thread(self.get, kind=kind, version=version, key=key)

    def get_many(self, *, kind: str, version: str, keys: Sequence[str]) -> dict[str, Ranked]:
        table, column = table_of(kind)
        unique = list(dict.fromkeys(keys))
        out: dict[str, Ranked] = {}
        with self._errors():
            conn = self._connection()
            for start in range(0, len(unique), _IN_LIMIT):
                chunk = unique[start : start + _IN_LIMIT]
                marks = ", ".join("?" * len(chunk))
                for key, blob in conn.execute(
                    f"SELECT {column}, ranked FROM {table} "
                    f"WHERE bundle_version = ? AND {column} IN ({marks})",
                    (version, *chunk),
                ):
                    ranked = decode_stored(blob, where=f"{table} {version} {key!r}")
                    if ranked is not None:
                        out[key] = ranked
        return out

    def put_many(self, *, kind: str, version: str, items: Sequence[tuple[str, Ranked]]) -> None:
        table, column = table_of(kind)
        now = self.clock()
        rows = [(version, key, encode_list(r), now) for key, r in items]
        with self._writing() as c, self._transaction(c) as conn:
            conn.executemany(
                f"INSERT OR REPLACE INTO {table} (bundle_version, {column}, ranked, computed_at) "
                "VALUES (?, ?, ?, ?)",
                rows,
            )

    def chunks_done(self, *, version: str, task: str) -> set[int]:
        with self._errors():
            rows = (
                self._connection()
                .execute(
                    "SELECT chunk FROM precompute_progress WHERE bundle_version = ? AND task = ?",
                    (version, task),
                )
                .fetchall()
            )
        return {int(r[0]) for r in rows}

    def mark_done(self, *, version: str, task: str, chunk: int, items: int) -> None:
        with self._writing() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO precompute_progress VALUES (?, ?, ?, ?, ?)",
                (version, task, chunk, items, self.clock()),
            )

    def _expires(self) -> float:
        ttl = self.options.station_ttl_seconds
        return self.clock() + ttl if ttl > 0 else float("inf")

    def create_station(self, *, station_id: str, state: str) -> bool:
        with self._writing() as c, self._transaction(c) as conn:
            conn.execute(
                "DELETE FROM stations WHERE station_id = ? AND expires_at < ?",
                (station_id, self.clock()),
            )
            cur = conn.execute(
                "INSERT OR IGNORE INTO stations VALUES (?, ?, 1, ?)",
                (station_id, state, self._expires()),
            )
        return cur.rowcount == 1

    def get_station(self, *, station_id: str) -> StoredStation | None:
        with self._errors():
            row = (
                self._connection()
                .execute(
                    "SELECT state, revision FROM stations WHERE station_id = ? AND expires_at >= ?",
                    (station_id, self.clock()),
                )
                .fetchone()
            )
        return None if row is None else StoredStation(state=row[0], revision=int(row[1]))

    def update_station(
        self, *, station_id: str, state: str, expected_revision: int,
        events: Sequence[EventRecord] = (),
    ) -> bool:  # fmt: skip
        # the same rule as Cassandra's `IF revision = ?`: one conditional statement; the events
        # go in the same transaction
        with self._writing() as c, self._transaction(c) as conn:
            cur = conn.execute(
                "UPDATE stations SET state = ?, revision = ?, expires_at = ? "
                "WHERE station_id = ? AND revision = ? AND expires_at >= ?",
                (state, expected_revision + 1, self._expires(), station_id, expected_revision,
                 self.clock()),
            )  # fmt: skip
            applied = cur.rowcount == 1
            if applied and events:
                self._insert_events(conn, events)
        return applied

    def delete_station(self, *, station_id: str) -> bool:
        with self._writing() as conn:
            cur = conn.execute(
                "DELETE FROM stations WHERE station_id = ? AND expires_at >= ?",
                (station_id, self.clock()),
            )
        return cur.rowcount == 1

    def append_events(self, *, events: Sequence[EventRecord]) -> None:
        with self._writing() as conn:
            self._insert_events(conn, events)

    @staticmethod
    def _insert_events(conn: sqlite3.Connection, events: Sequence[EventRecord]) -> None:
        conn.executemany(
            "INSERT OR REPLACE INTO station_events VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(e.station_id, e.event_id, e.user_id, e.variant, e.bundle_version, e.track_id,
              e.kind, e.at) for e in events],
        )  # fmt: skip

    def events(self) -> Iterator[EventRecord]:
        with self._errors():
            rows = self._connection().execute(
                "SELECT station_id, event_id, user_id, variant, bundle_version, track_id, kind, at "
                "FROM station_events ORDER BY at, station_id, event_id"
            )
            for r in rows:
                yield EventRecord(*r)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
