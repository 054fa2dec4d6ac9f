"""The store protocol, shared by the SQLite and Cassandra implementations.

A store keeps lists computed from a bundle, keyed by (bundle version, id), so that two bundle
versions never mix: the top radio neighbours of each track and the related artists of each artist.
It also records which chunks of a bulk precompute are done, so that an interrupted run resumes.

Every method raises `StoreUnavailable` when the store cannot be reached (the service turns that
into a 503 with Retry-After); any other exception is a bug.
"""

from __future__ import annotations

import itertools
import logging
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

# StoreOptions is built from the settings; the URL has a module of its own (settings reads it)
from service.settings import StoreOptions as StoreOptions
from service.store.url import StoreConfigError as StoreConfigError
from service.store.url import StoreUrl as StoreUrl
from service.store.url import parse_store_url as parse_store_url

log = logging.getLogger("segue")

RADIO = "radio"  # the top radio neighbours of a track
RELATED = "related"  # the related artists of an artist
KINDS = (RADIO, RELATED)
# each kind's table and the column of the id it is keyed by, in both stores
TABLES = {RADIO: ("radio_neighbours", "track_id"), RELATED: ("related_artists", "artist_id")}


def check_kind(kind: str) -> None:
    """A list kind a store keeps (RADIO, RELATED); anything else is a bug, not an outage."""
    if kind not in KINDS:
        raise ValueError(f"unknown list kind {kind!r}; one of {KINDS}")


def table_of(kind: str) -> tuple[str, str]:
    """The table of a list kind and its id column (ValueError for an unknown kind)."""
    check_kind(kind)
    return TABLES[kind]


@dataclass(frozen=True)
class Ranked:
    """A ranked list of external ids with their scores, best first.

    `rows` are the same items as rows of the bundle version the list is keyed by (lists are
    always keyed by version, so they stay valid): a reader needs no id lookups."""

    ids: list[str]
    scores: list[float]
    rows: list[int] | None = None

    def __post_init__(self) -> None:
        if len(self.ids) != len(self.scores):
            raise ValueError(f"{len(self.ids)} ids but {len(self.scores)} scores")
        if self.rows is not None and len(self.rows) != len(self.ids):
            raise ValueError(f"{len(self.ids)} ids but {len(self.rows)} rows")


# a list as one blob: a header (format, whether rows are present, length), the rows as int32,
# the scores as float32, then the ids as uint32 offsets into their UTF-8 bytes; decoding is a
# few numpy views instead of a value per item
LIST_FORMAT = 1
_HEADER = struct.Struct("<BB2xI")


def encode_list(ranked: Ranked) -> bytes:
    """`ranked` as one blob (`decode_list` reads it back; scores are kept as float32)."""
    encoded = [i.encode("utf-8") for i in ranked.ids]
    offsets = np.zeros(len(encoded) + 1, dtype="<u4")
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    parts = [_HEADER.pack(LIST_FORMAT, ranked.rows is not None, len(encoded))]
    if ranked.rows is not None:
        parts.append(np.asarray(ranked.rows, dtype="<i4").tobytes())
    parts += [np.asarray(ranked.scores, dtype="<f4").tobytes(), offsets.tobytes(), *encoded]
    return b"".join(parts)


class BadList(ValueError):
    """Bytes in the store that are not a list `encode_list` wrote (another format, cut short,
    overwritten): the reader treats the list as missing and computes it again."""


def decode_list(blob: bytes) -> Ranked:
    """The list `encode_list` wrote; BadList for any other bytes (every length and offset is
    checked, so a damaged blob never decodes to wrong ids)."""
    if len(blob) < _HEADER.size:
        raise BadList(f"a list blob of {len(blob)} bytes is shorter than its header")
    version, has_rows, n = _HEADER.unpack_from(blob)
    if version != LIST_FORMAT or has_rows not in (0, 1):
        raise BadList(f"list format {version} (rows flag {has_rows}), not {LIST_FORMAT}")
    at = _HEADER.size
    fixed = at + 4 * n * (2 + has_rows) + 4
    if len(blob) < fixed:
        raise BadList(f"a list blob of {len(blob)} bytes cannot hold {n} items")
    rows = None
    if has_rows:
        rows = np.frombuffer(blob, dtype="<i4", count=n, offset=at).tolist()
        at += 4 * n
    scores = np.frombuffer(blob, dtype="<f4", count=n, offset=at).tolist()
    offsets_array = np.frombuffer(blob, dtype="<u4", count=n + 1, offset=at + 4 * n)
    text = blob[fixed:]
    if offsets_array[0] != 0 or (np.diff(offsets_array.astype(np.int64)) < 0).any():
        raise BadList("a list blob's id offsets are not increasing from 0")
    if int(offsets_array[-1]) != len(text):
        raise BadList(
            f"a list blob's ids take {len(text)} bytes, its offsets say {offsets_array[-1]}"
        )
    offsets = offsets_array.tolist()
    try:
        if text.isascii():  # byte offsets are character offsets: decode once, then slice
            chars = text.decode("ascii")
            ids = [chars[a:b] for a, b in itertools.pairwise(offsets)]
        else:
            ids = [text[a:b].decode("utf-8") for a, b in itertools.pairwise(offsets)]
    except UnicodeDecodeError as e:
        raise BadList(f"a list blob's ids are not UTF-8: {e}") from None
    return Ranked(ids=ids, scores=scores, rows=rows)


def decode_stored(blob: bytes, *, where: str) -> Ranked | None:
    """A stored list, or None (a miss, so the list is computed and written again) for bytes that
    are not one; logged, since it means the row was damaged or written by another format."""
    try:
        return decode_list(blob)
    except BadList as e:
        log.warning("ignoring the stored list %s: %s", where, e)
        return None


@dataclass(frozen=True)
class StoredStation:
    state: str  # the station's JSON
    revision: int  # bumped by every update; updates are conditional on it


@dataclass(frozen=True)
class EventRecord:
    """One feedback event in the log (what `segue events export` writes out)."""

    station_id: str
    event_id: str
    user_id: str
    variant: str
    bundle_version: str
    track_id: str
    kind: str
    at: float  # unix seconds


class StoreUnavailable(Exception):
    """The store did not answer (down, unreachable, timed out); try again later.

    `down` is False when the store answers but this one request failed (a timeout under load):
    the worker goes on using the store instead of treating it as down until the next check."""

    def __init__(self, message: str, *, down: bool = True) -> None:
        super().__init__(message)
        self.down = down


class Store(Protocol):
    """What the service and `segue precompute` need from a store."""

    @property
    def url(self) -> str:
        """Where the store is, without credentials (for logs and /readyz)."""
        ...

    def ping(self) -> None:
        """Returns if the store answers; raises StoreUnavailable otherwise."""

    def get(self, *, kind: str, version: str, key: str) -> Ranked | None:
        """The list of `kind` (RADIO or RELATED) for one id of one bundle version, or None."""

    async def get_async(self, *, kind: str, version: str, key: str) -> Ranked | None:
        """`get` for the event loop: awaits the store without holding a thread where the
        store's driver can (Cassandra), on a worker thread otherwise."""

    def get_many(self, *, kind: str, version: str, keys: Sequence[str]) -> dict[str, Ranked]:
        """The lists of several ids at once (concurrently where the store can); ids without a
        list are left out."""

    def put_many(self, *, kind: str, version: str, items: Sequence[tuple[str, Ranked]]) -> None:
        """Writes lists (concurrently where the store can); replaces existing ones."""

    def chunks_done(self, *, version: str, task: str) -> set[int]:
        """The chunks of a bulk precompute task already written for a bundle version."""

    def mark_done(self, *, version: str, task: str, chunk: int, items: int) -> None:
        """Records that one chunk of a precompute task is fully written."""

    def create_station(self, *, station_id: str, state: str) -> bool:
        """Inserts a station at revision 1 unless the id exists (then False)."""

    def get_station(self, *, station_id: str) -> StoredStation | None:
        """The station, or None if unknown, deleted or expired."""

    def update_station(
        self, *, station_id: str, state: str, expected_revision: int,
        events: Sequence[EventRecord] = (),
    ) -> bool:  # fmt: skip
        """Writes the state at expected_revision + 1 only if the stored revision is still
        expected_revision (a lightweight transaction in Cassandra); False on a conflict. When
        it writes, `events` go to the event log with it (SQLite: in the same transaction;
        Cassandra: right after, as a conditional write cannot span tables) before it returns."""

    def delete_station(self, *, station_id: str) -> bool:
        """Deletes a station; False if there was none."""

    def append_events(self, *, events: Sequence[EventRecord]) -> None:
        """Appends to the event log; idempotent by (station id, event id)."""

    def events(self) -> Iterator[EventRecord]:
        """The whole event log (for export), in no particular order."""

    def close(self) -> None:
        """Releases connections; the store is not used afterwards."""
