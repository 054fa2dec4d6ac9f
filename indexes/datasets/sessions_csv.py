"""Loader for a sessions (or playlists) CSV: ordered track lists.

Format: comma-separated with a header line; column names are matched case-insensitively and in
any order, extra columns are ignored.

- required: ``session``, ``track``, ``artist`` and at least one of ``position`` (an integer) or
  ``timestamp`` (unix seconds, or ISO 8601 such as ``2024-05-01T12:00:00Z``; ISO times without a
  zone are taken as UTC)
- optional: ``user`` (default: each session is its own user), ``track_name``, ``artist_name``,
  ``tags`` (separated by ``|``)

Rules:

- Within a session, tracks are ordered by position when the file has a position column, else by
  timestamp; ties keep file order. Sessions come in order of first appearance.
- A sequence's timestamp is its session's earliest timestamp (NaN when the file has no timestamp
  column); its ``times`` are each row's timestamp in the sequence's order (None without a
  timestamp column; with a position column too they follow the positions). Its user is the
  row's user (or the session itself when there is no user column).
- Interactions are derived from the sequences: one play per sequence position.
- Bad rows are reported with their line number and not loaded: a wrong number of fields, malformed
  quoting, an empty session/track/artist/user, a position that is not an integer, a timestamp that
  is neither a finite number nor ISO 8601, a track listed under a different artist than on its
  first loaded row, and a session listed under a different user than on its first loaded row (the
  first artist / user is kept).
- A repeated (session, position or timestamp, track) is kept once and counted in ``duplicates``; it
  counts as loaded (merged into its first copy), so ``rows == loaded + bad``.
- Names, tags, decoding, blank lines and usage errors follow `indexes.datasets.plays_csv`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from indexes.datasets.catalogue import Catalogue, NameColumns
from indexes.datasets.report import LoadReport
from indexes.datasets.shape import Dataset, Interner, Sequences, dataset_from_sequences
from indexes.datasets.tables import (
    BadRow,
    Fields,
    IdColumns,
    id_column_spec,
    is_duplicate,
    loaded_rows,
    open_table,
    parse_timestamp,
    read_ids,
)

REQUIRED = ("session", "track", "artist")
ORDER_COLUMNS = ("position", "timestamp")

_INT64_MAX = 2**63 - 1


def _parse_position(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise BadRow(f"position {text!r} is not an integer") from None
    if abs(value) > _INT64_MAX:
        raise BadRow(f"position {text!r} is out of range")
    return value


def load_sessions_csv(path: Path) -> Dataset:
    """Loads a sessions CSV (session, position or timestamp, track, artist; see the docstring)."""
    path = Path(path)
    report = LoadReport()
    out, columns, rows = open_table(path, report, required=REQUIRED, one_of=ORDER_COLUMNS)
    row_of = _SessionRows.of(columns)
    names = NameColumns.of(columns)
    catalogue = Catalogue()
    log = _SessionLog()

    def parse(fields: Fields) -> _Row:
        return row_of.parse(fields, catalogue=catalogue, log=log)

    for row in loaded_rows(rows, out=out, parse=parse):
        key = row.position if row_of.position is not None else row.timestamp
        if is_duplicate((row.session, key, row.track), log.seen, out=out):
            continue
        log.seen.add((row.session, key, row.track))
        t = catalogue.add_row(row.fields, track=row.track, artist=row.artist, names=names)
        log.add(row, key=key, track=t)
    sequences = log.sequences(
        by_position=row_of.position is not None, timed=row_of.timestamp is not None
    )
    return dataset_from_sequences(
        name=f"sessions:{path}",
        items=catalogue.items(),
        user_ids=log.users.ids,
        sequences=sequences,
        report=report,
    )


@dataclass(frozen=True)
class _Row:
    """One row: a session's play of a track, its position (0 without the column) and time
    (NaN without the column)."""

    fields: Fields
    session: str
    track: str
    artist: str
    user: str
    position: int
    timestamp: float


@dataclass
class _SessionLog:
    """The sessions of the loaded rows (in order of first appearance), their users and start
    times, and each row's session, order key, time and track row."""

    sessions: Interner = field(default_factory=Interner)
    users: Interner = field(default_factory=Interner)
    session_user: list[int] = field(default_factory=list)
    session_start: list[float] = field(default_factory=list)
    row_session: list[int] = field(default_factory=list)
    row_key: list[float] = field(default_factory=list)
    row_time: list[float] = field(default_factory=list)
    row_track: list[int] = field(default_factory=list)
    seen: set[tuple[str, float, str]] = field(default_factory=set)  # (session, key, track)

    def check_user(self, session: str, user: str) -> None:
        """Raises `BadRow` when `session` is already listed under another user."""
        s = self.sessions.index.get(session)
        if s is not None and self.users.ids[self.session_user[s]] != user:
            first = self.users.ids[self.session_user[s]]
            raise BadRow(
                f"session {session!r} listed under user {user!r}, first seen under {first!r}"
            )

    def add(self, row: _Row, *, key: float, track: int) -> None:
        s = self.sessions.get(row.session)
        if s == len(self.session_user):
            self.session_user.append(self.users.get(row.user))
            self.session_start.append(row.timestamp)
        elif row.timestamp < self.session_start[s]:
            self.session_start[s] = row.timestamp
        self.row_session.append(s)
        self.row_key.append(key)
        self.row_time.append(row.timestamp)
        self.row_track.append(track)

    def sequences(self, *, by_position: bool, timed: bool) -> Sequences:
        """One sequence per session, its rows by key (position or time), ties in file order."""
        seq_of_row = np.asarray(self.row_session, dtype=np.int64)
        keys = np.asarray(self.row_key, dtype=np.int64 if by_position else np.float64)
        order = np.lexsort((np.arange(len(self.row_track)), keys, seq_of_row))
        n_sessions = len(self.sessions)
        indptr = np.zeros(n_sessions + 1, dtype=np.int64)
        np.cumsum(np.bincount(seq_of_row, minlength=n_sessions), out=indptr[1:])
        return Sequences(
            indptr=indptr,
            items=np.asarray(self.row_track, dtype=np.int32)[order],
            user=np.asarray(self.session_user, dtype=np.int32),
            timestamp=np.asarray(self.session_start, dtype=np.float64),
            ordered=True,
            times=np.asarray(self.row_time, dtype=np.float64)[order] if timed else None,
        )


@dataclass(frozen=True)
class _SessionRows:
    """Where a file's columns are, to read its rows."""

    ids: IdColumns  # session, track, artist
    user: IdColumns  # empty without a user column
    position: int | None
    timestamp: int | None

    @classmethod
    def of(cls, columns: dict[str, int]) -> _SessionRows:
        return cls(
            ids=id_column_spec(columns, REQUIRED),
            user=id_column_spec(columns, ("user",)) if "user" in columns else (),
            position=columns.get("position"),
            timestamp=columns.get("timestamp"),
        )

    def parse(self, fields: Fields, *, catalogue: Catalogue, log: _SessionLog) -> _Row:
        """The row; raises `BadRow` (see the module docstring for why)."""
        session, track, artist = read_ids(fields, self.ids)
        user = read_ids(fields, self.user)[0] if self.user else session
        position = _parse_position(fields[self.position]) if self.position is not None else 0
        timestamp = (
            parse_timestamp(fields[self.timestamp]) if self.timestamp is not None else math.nan
        )
        catalogue.check(track, artist)
        log.check_user(session, user)
        return _Row(
            fields=fields,
            session=session,
            track=track,
            artist=artist,
            user=user,
            position=position,
            timestamp=timestamp,
        )
