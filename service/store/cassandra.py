"""The production store: Apache Cassandra through the DataStax `cassandra-driver`.

One `Cluster` and session per process, made after the fork (the service makes it in each worker's
lifespan). Queries are prepared statements; consistency, timeouts and retries come from settings.
The schema step is idempotent and versioned (table `schema_version`); DDL cannot be prepared.

When Cassandra is down, every call raises `StoreUnavailable` at once (the driver marks the host
down and reconnects in the background); if the first connection fails, the next call tries again
after a short back-off, so a worker started before Cassandra recovers on its own.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from cassandra import (
    ConsistencyLevel,
    CoordinationFailure,
    DriverException,
    OperationTimedOut,
    ReadTimeout,
    RequestExecutionException,
    WriteTimeout,
)
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import (
    EXEC_PROFILE_DEFAULT,
    Cluster,
    ExecutionProfile,
    NoHostAvailable,
    Session,
)
from cassandra.concurrent import execute_concurrent_with_args
from cassandra.connection import ConnectionException
from cassandra.policies import (
    DCAwareRoundRobinPolicy,
    ExponentialReconnectionPolicy,
    RetryPolicy,
    TokenAwarePolicy,
)
from cassandra.query import PreparedStatement

from service.settings import Settings, StoreOptions
from service.store.base import (
    TABLES,
    EventRecord,
    Ranked,
    StoredStation,
    StoreUnavailable,
    check_kind,
    decode_stored,
    encode_list,
)
from service.store.url import StoreUrl

SCHEMA_COMPONENT = "segue"


def schema(keyspace: str, *, ttl_seconds: int) -> list[tuple[int, list[str]]]:
    """(version, statements), applied in order, each version at most once.

    Lists are written whole, one cell each: frozen lists up to step 3 (a non-frozen list is a
    cell per element plus a tombstone on every overwrite), one blob from step 4."""
    ttl = int(ttl_seconds)
    return [
        (
            1,
            [
                f"""CREATE TABLE IF NOT EXISTS {keyspace}.radio_neighbours (
                    bundle_version text, track_id text, ids frozen<list<text>>, scores frozen<list<float>>,
                    rows frozen<list<int>>,
                    PRIMARY KEY ((bundle_version, track_id)))
                    WITH default_time_to_live = {ttl}""",
                f"""CREATE TABLE IF NOT EXISTS {keyspace}.related_artists (
                    bundle_version text, artist_id text, ids frozen<list<text>>, scores frozen<list<float>>,
                    rows frozen<list<int>>,
                    PRIMARY KEY ((bundle_version, artist_id)))
                    WITH default_time_to_live = {ttl}""",
                f"""CREATE TABLE IF NOT EXISTS {keyspace}.precompute_progress (
                    bundle_version text, task text, chunk int, items int, done_at timestamp,
                    PRIMARY KEY ((bundle_version, task), chunk))
                    WITH default_time_to_live = {ttl}""",
            ],
        ),
        (
            2,
            [
                # every write to a station is a lightweight transaction on `revision`; the TTL
                # is set per write (USING TTL), so a station expires after its last use
                f"""CREATE TABLE IF NOT EXISTS {keyspace}.stations (
                    station_id text PRIMARY KEY, state text, revision int)""",
                f"""CREATE TABLE IF NOT EXISTS {keyspace}.station_events (
                    station_id text, event_id text, user_id text, variant text,
                    bundle_version text, track_id text, kind text, at timestamp,
                    PRIMARY KEY ((station_id), event_id))""",
            ],
        ),
        (
            3,
            [
                # a token per conditional write: when a write times out, a SERIAL read of it
                # tells whether that write won
                f"ALTER TABLE {keyspace}.stations ADD IF NOT EXISTS writer uuid",
            ],
        ),
        (4, _blob_lists(keyspace)),
    ]


def _blob_lists(keyspace: str) -> list[str]:
    """Schema step 4: lists as one blob each (`encode_list`). Rows of the old layout have no
    blob and read as missing (recomputed on a miss or by `segue precompute`, whose task names
    change with the layout); adding a column is safe while other workers run the same step."""
    return [
        f"ALTER TABLE {keyspace}.{table} ADD IF NOT EXISTS ranked blob"
        for table, _ in TABLES.values()
    ]


_UNAVAILABLE = (
    NoHostAvailable,
    ConnectionException,
    DriverException,  # OperationTimedOut and other client-side failures
    RequestExecutionException,  # Unavailable, ReadTimeout, WriteTimeout, failures
    OSError,
)
_SETTLE_ATTEMPTS = 4  # SERIAL reads that try to learn a timed-out write's outcome
# reachable, but this one request did not finish in time: not a reason to call the store down
_SLOW = (OperationTimedOut, ReadTimeout, WriteTimeout, CoordinationFailure)
_EVENT_COLUMNS = "station_id, event_id, user_id, variant, bundle_version, track_id, kind, at"


def statements(ks: str) -> dict[str, str]:
    """The CQL of every request the store makes, by name (prepared once per session)."""
    stations, events = f"{ks}.stations", f"{ks}.station_events"
    cql = {
        "ping": "SELECT release_version FROM system.local",
        "chunks_done": (
            f"SELECT chunk FROM {ks}.precompute_progress WHERE bundle_version = ? AND task = ?"
        ),
        "mark_done": (
            f"INSERT INTO {ks}.precompute_progress (bundle_version, task, chunk, items, done_at) "
            "VALUES (?, ?, ?, ?, toTimestamp(now()))"
        ),
        "create_station": (
            f"INSERT INTO {stations} (station_id, state, revision, writer) VALUES (?, ?, 1, ?) "
            "IF NOT EXISTS USING TTL ?"
        ),
        "get_station": f"SELECT state, revision FROM {stations} WHERE station_id = ?",
        "update_station": (
            f"UPDATE {stations} USING TTL ? SET state = ?, revision = ?, writer = ? "
            "WHERE station_id = ? IF revision = ?"
        ),
        "station_writer": f"SELECT writer FROM {stations} WHERE station_id = ?",
        "delete_station": f"DELETE FROM {stations} WHERE station_id = ? IF EXISTS",
        "append_event": (
            f"INSERT INTO {events} ({_EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        ),
        "events": f"SELECT {_EVENT_COLUMNS} FROM {events}",
    }
    for kind, (table, column) in TABLES.items():
        cql[f"get:{kind}"] = (
            f"SELECT ranked FROM {ks}.{table} WHERE bundle_version = ? AND {column} = ?"
        )
        cql[f"put:{kind}"] = (
            f"INSERT INTO {ks}.{table} (bundle_version, {column}, ranked) VALUES (?, ?, ?) "
            "USING TTL ?"
        )
    return cql


class BoundedRetry(RetryPolicy):
    """Retries a timed-out or unavailable request up to `retries` times, on the next host."""

    def __init__(self, retries: int) -> None:
        self.retries = retries

    def on_read_timeout(self, query: Any, consistency: Any, required_responses: int,
                        received_responses: int, data_retrieved: bool, retry_num: int) -> Any:  # fmt: skip
        if retry_num < self.retries:
            return self.RETRY, consistency
        return self.RETHROW, None

    def on_write_timeout(self, query: Any, consistency: Any, write_type: Any,
                         required_responses: int, received_responses: int, retry_num: int) -> Any:  # fmt: skip
        # our writes replace whole rows, so repeating one is safe
        if retry_num < self.retries:
            return self.RETRY, consistency
        return self.RETHROW, None

    def on_unavailable(self, query: Any, consistency: Any, required_replicas: int,
                       alive_replicas: int, retry_num: int) -> Any:  # fmt: skip
        if retry_num < self.retries:
            return self.RETRY_NEXT_HOST, None
        return self.RETHROW, None

    def on_request_error(self, query: Any, consistency: Any, error: Any, retry_num: int) -> Any:
        if retry_num < self.retries:
            return self.RETRY_NEXT_HOST, None
        return self.RETHROW, None


class ConditionalRetry(BoundedRetry):
    """For lightweight transactions: a timed-out one may still have won, and repeating it would
    then report a conflict. It is not repeated; the store reads its outcome instead."""

    def on_write_timeout(self, query: Any, consistency: Any, write_type: Any,
                         required_responses: int, received_responses: int, retry_num: int) -> Any:  # fmt: skip
        return self.RETHROW, None


class CassandraStore:
    def __init__(
        self, *, url: StoreUrl, options: StoreOptions | None = None, apply_schema: bool = True
    ) -> None:
        self._url = url
        self.options = options or Settings.defaults().store_options()
        self.apply_schema = apply_schema
        try:
            self.consistency = ConsistencyLevel.name_to_value[self.options.consistency.upper()]
        except KeyError:
            raise ValueError(
                f"unknown Cassandra consistency level {self.options.consistency!r}; one of "
                + ", ".join(sorted(ConsistencyLevel.name_to_value))
            ) from None
        try:
            self.serial = ConsistencyLevel.name_to_value[self.options.serial_consistency.upper()]
        except KeyError:
            raise ValueError(
                f"unknown serial consistency {self.options.serial_consistency!r}; "
                "SERIAL or LOCAL_SERIAL"
            ) from None
        self._lock = threading.Lock()
        self._cluster: Cluster | None = None
        self._session: Session | None = None
        self._prepared: dict[str, PreparedStatement] = {}
        self._next_attempt = 0.0
        self._backoff = 0.5
        self._last_error = ""
        self._closed = False

    @property
    def url(self) -> str:
        return self._url.display()

    # -- connection -----------------------------------------------------------------------

    def _new_cluster(self) -> Cluster:
        o = self.options
        profile = ExecutionProfile(
            consistency_level=self.consistency,
            request_timeout=o.timeout_seconds,
            retry_policy=BoundedRetry(o.retries),
            load_balancing_policy=TokenAwarePolicy(
                DCAwareRoundRobinPolicy(local_dc=o.local_dc)
                if o.local_dc
                else DCAwareRoundRobinPolicy()
            ),
        )
        auth = (
            PlainTextAuthProvider(username=o.username, password=o.password or "")
            if o.username
            else None
        )
        return Cluster(
            contact_points=list(self._url.hosts),
            port=self._url.port,
            protocol_version=o.protocol_version,
            auth_provider=auth,
            execution_profiles={EXEC_PROFILE_DEFAULT: profile},
            reconnection_policy=ExponentialReconnectionPolicy(base_delay=0.5, max_delay=5.0),
            connect_timeout=o.connect_timeout_seconds,
            control_connection_timeout=o.connect_timeout_seconds,
            idle_heartbeat_interval=5,
            idle_heartbeat_timeout=o.connect_timeout_seconds,
            # without it a request larger than a TCP segment (a station's state) waits for the
            # delayed ACK of its first segment (Nagle): loadtest/README.md, bench_stations
            sockopts=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        )

    def _ensure(self) -> tuple[Session, dict[str, PreparedStatement]]:
        session = self._session
        if session is not None:
            return session, self._prepared
        with self._lock:
            if self._session is not None:
                return self._session, self._prepared
            if self._closed:
                raise StoreUnavailable(f"cassandra store {self.url} is closed")
            now = time.monotonic()
            if now < self._next_attempt:
                raise StoreUnavailable(
                    f"cassandra store {self.url} unreachable ({self._last_error}); "
                    f"next attempt in {self._next_attempt - now:.1f}s"
                )
            cluster = self._new_cluster()
            try:
                session = cluster.connect()
                if self.apply_schema:
                    self._migrate(session)
                prepared = self._prepare(session)
            except _UNAVAILABLE as e:
                cluster.shutdown()
                self._last_error = _describe(e)
                self._next_attempt = time.monotonic() + self._backoff
                self._backoff = min(self._backoff * 2, 5.0)
                raise StoreUnavailable(
                    f"cassandra store {self.url} unreachable: {self._last_error}"
                ) from e
            except BaseException:
                cluster.shutdown()
                raise
            self._cluster, self._session, self._prepared = cluster, session, prepared
            self._backoff = 0.5
            return session, prepared

    def _migrate(self, session: Session) -> None:
        ks = self._url.keyspace
        replication = "{" + ", ".join(f"'{k}': '{v}'" for k, v in self.options.replication) + "}"
        session.execute(
            f"CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {replication}",
            timeout=max(30.0, self.options.timeout_seconds),
        )
        session.execute(
            f"""CREATE TABLE IF NOT EXISTS {ks}.schema_version (
                component text, version int, applied_at timestamp,
                PRIMARY KEY (component, version))""",
            timeout=max(30.0, self.options.timeout_seconds),
        )
        read = session.prepare(f"SELECT version FROM {ks}.schema_version WHERE component = ?")
        have = {row.version for row in session.execute(read, (SCHEMA_COMPONENT,))}
        record = session.prepare(
            f"INSERT INTO {ks}.schema_version (component, version, applied_at) "
            "VALUES (?, ?, toTimestamp(now()))"
        )
        for version, statements in schema(ks, ttl_seconds=self.options.ttl_seconds):
            if version in have:
                continue
            for statement in statements:
                session.execute(statement, timeout=max(30.0, self.options.timeout_seconds))
            session.execute(record, (SCHEMA_COMPONENT, version))

    def _prepare(self, session: Session) -> dict[str, PreparedStatement]:
        p = {name: session.prepare(cql) for name, cql in statements(self._url.keyspace).items()}
        # the serial phase of LWTs reads the station row at this level
        p["get_station"].consistency_level = self.consistency
        # a SERIAL read completes any write in progress on the row: it tells who won
        p["station_writer"].consistency_level = self.serial
        conditional = ConditionalRetry(self.options.retries)
        for name in ("create_station", "update_station", "delete_station"):
            p[name].serial_consistency_level = self.serial
            p[name].retry_policy = conditional
        return p

    @contextmanager
    def _errors(self, doing: str = "") -> Iterator[None]:
        try:
            yield
        except _UNAVAILABLE as e:
            raise StoreUnavailable(
                f"cassandra store {self.url}: {doing}{_describe(e)}", down=not isinstance(e, _SLOW)
            ) from e

    def _conditional(self, name: str, args: tuple[Any, ...], *, station_id: str,
                     writer: uuid.UUID | None) -> bool:  # fmt: skip
        """Runs one lightweight transaction on a station: whether it was applied. When it times
        out, its outcome is unknown (it may yet win): a SERIAL read settles it, then `writer` is
        on the row if and only if this write won (None: the row is gone, for a delete)."""
        session, p = self._ensure()
        try:
            with self._errors():
                return bool(session.execute(p[name], args).was_applied)
        except StoreUnavailable as e:
            if e.down:
                raise
            timed_out = e
        doing = f"station {station_id!r}: outcome of a write unknown ({timed_out}); "
        for attempt in range(_SETTLE_ATTEMPTS):  # a read: safe to repeat
            try:
                with self._errors(doing):
                    row = session.execute(p["station_writer"], (station_id,)).one()
                break
            except StoreUnavailable as e:
                if e.down or attempt == _SETTLE_ATTEMPTS - 1:
                    raise
                time.sleep(0.01 * 2**attempt)
        return (row is None) if writer is None else (row is not None and row.writer == writer)

    # -- the Store protocol ---------------------------------------------------------------

    def ping(self) -> None:
        session, p = self._ensure()
        with self._errors():
            session.execute(p["ping"]).one()

    def get(self, *, kind: str, version: str, key: str) -> Ranked | None:
        check_kind(kind)
        session, p = self._ensure()
        with self._errors():
            row = session.execute(p[f"get:{kind}"], (version, key)).one()
        return _ranked(row)

    async def get_async(self, *, kind: str, version: str, key: str) -> Ranked | None:
        check_kind(kind)
        if self._session is None:  # connecting blocks: not on the event loop
            return await asyncio.to_thread(self.get, kind=kind, version=version, key=key)
        session, p = self._ensure()
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()
        with self._errors():
            # the driver's own IO thread answers: no worker thread waits on the round trip
            future = session.execute_async(p[f"get:{kind}"], (version, key))
            future.add_callbacks(
                callback=lambda rows: loop.call_soon_threadsafe(_settle, done, rows, None),
                errback=lambda error: loop.call_soon_threadsafe(_settle, done, None, error),
            )
            rows = await done
        return _ranked(rows[0] if rows else None)

    def get_many(self, *, kind: str, version: str, keys: Sequence[str]) -> dict[str, Ranked]:
        check_kind(kind)
        unique = list(dict.fromkeys(keys))
        if not unique:
            return {}
        session, p = self._ensure()
        with self._errors():
            results = execute_concurrent_with_args(
                session, p[f"get:{kind}"], [(version, key) for key in unique],
                concurrency=self.options.write_concurrency, raise_on_first_error=True,
            )  # fmt: skip
            out: dict[str, Ranked] = {}
            for key, (_, rows) in zip(unique, results, strict=True):
                ranked = _ranked(rows.one())
                if ranked is not None:
                    out[key] = ranked
        return out

    def put_many(self, *, kind: str, version: str, items: Sequence[tuple[str, Ranked]]) -> None:
        check_kind(kind)
        if not items:
            return
        session, p = self._ensure()
        ttl = int(self.options.ttl_seconds)
        args = [(version, key, encode_list(r), ttl) for key, r in items]
        with self._errors():
            execute_concurrent_with_args(
                session,
                p[f"put:{kind}"],
                args,
                concurrency=self.options.write_concurrency,
                raise_on_first_error=True,
            )

    def chunks_done(self, *, version: str, task: str) -> set[int]:
        session, p = self._ensure()
        with self._errors():
            return {int(r.chunk) for r in session.execute(p["chunks_done"], (version, task))}

    def mark_done(self, *, version: str, task: str, chunk: int, items: int) -> None:
        session, p = self._ensure()
        with self._errors():
            session.execute(p["mark_done"], (version, task, chunk, items))

    def _station_ttl(self) -> int:
        return int(self.options.station_ttl_seconds)

    def create_station(self, *, station_id: str, state: str) -> bool:
        writer = uuid.uuid4()
        return self._conditional("create_station", (station_id, state, writer, self._station_ttl()),
                                 station_id=station_id, writer=writer)  # fmt: skip

    def get_station(self, *, station_id: str) -> StoredStation | None:
        session, p = self._ensure()
        with self._errors():
            row = session.execute(p["get_station"], (station_id,)).one()
        if row is None:
            return None
        return StoredStation(state=row.state, revision=int(row.revision))

    def update_station(
        self, *, station_id: str, state: str, expected_revision: int,
        events: Sequence[EventRecord] = (),
    ) -> bool:  # fmt: skip
        writer = uuid.uuid4()
        args = (self._station_ttl(), state, expected_revision + 1, writer, station_id,
                expected_revision)  # fmt: skip
        applied = self._conditional("update_station", args, station_id=station_id, writer=writer)
        if applied:
            self.append_events(events=events)
        return applied

    def delete_station(self, *, station_id: str) -> bool:
        return self._conditional("delete_station", (station_id,), station_id=station_id,
                                 writer=None)  # fmt: skip

    def append_events(self, *, events: Sequence[EventRecord]) -> None:
        if not events:
            return
        session, p = self._ensure()
        args = [
            (e.station_id, e.event_id, e.user_id, e.variant, e.bundle_version, e.track_id, e.kind,
             datetime.fromtimestamp(e.at, tz=UTC))
            for e in events
        ]  # fmt: skip
        with self._errors():
            execute_concurrent_with_args(
                session, p["append_event"], args,
                concurrency=self.options.write_concurrency, raise_on_first_error=True,
            )  # fmt: skip

    def events(self) -> Iterator[EventRecord]:
        session, p = self._ensure()
        with self._errors():
            for r in session.execute(p["events"]):  # the driver pages through the table
                at = r.at.replace(tzinfo=UTC).timestamp() if r.at is not None else 0.0
                yield EventRecord(
                    station_id=r.station_id, event_id=r.event_id, user_id=r.user_id,
                    variant=r.variant, bundle_version=r.bundle_version, track_id=r.track_id,
                    kind=r.kind, at=at,
                )  # fmt: skip

    def close(self) -> None:
        with self._lock:
            self._closed = True
            cluster, self._cluster, self._session = self._cluster, None, None
        if cluster is not None:
            cluster.shutdown()


def _settle(done: asyncio.Future[Any], rows: Any, error: BaseException | None) -> None:
    """Hands a driver callback's outcome to the awaiting request (on the event loop)."""
    if done.cancelled():  # the request went away
        return
    if error is not None:
        done.set_exception(error)
    else:
        done.set_result(rows)


def _ranked(row: Any) -> Ranked | None:
    """A row's list; None for no row, or for a row of the layout before schema version 4."""
    if row is None or row.ranked is None:
        return None
    return decode_stored(row.ranked, where="in Cassandra")


def _describe(e: BaseException) -> str:
    if isinstance(e, NoHostAvailable) and e.errors:
        first = next(iter(e.errors.values()))
        return f"no host available ({type(first).__name__}: {first})"
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
