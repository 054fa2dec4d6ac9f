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
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from indexes.datasets.report import LoadReport
from indexes.datasets.shape import Dataset, Interner, Sequences, dataset_from_sequences
from indexes.datasets.tables import (
    BadRow,
    Catalogue,
    id_column_spec,
    open_table,
    optional,
    read_ids,
    split_tags,
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


def parse_timestamp(text: str, column: str = "timestamp") -> float:
    """Unix seconds from a number or an ISO 8601 date-time; raises `BadRow` otherwise.

    ISO times without a zone are taken as UTC. `column` names the field in the reason.
    """
    try:
        value = float(text)
    except ValueError:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise BadRow(f"{column} {text!r} is neither unix seconds nor ISO 8601") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        value = moment.timestamp()
    if not math.isfinite(value):
        raise BadRow(f"{column} {text!r} is not finite")
    return value


def load_sessions_csv(path: Path) -> Dataset:
    """Loads a sessions CSV (session, position or timestamp, track, artist; see the docstring)."""
    path = Path(path)
    report = LoadReport()
    out, columns, rows = open_table(path, report, required=REQUIRED, one_of=ORDER_COLUMNS)
    id_columns = id_column_spec(columns, REQUIRED)
    user_column = id_column_spec(columns, ("user",)) if "user" in columns else ()
    i_position = columns.get("position")
    i_timestamp = columns.get("timestamp")
    i_track_name = columns.get("track_name")
    i_artist_name = columns.get("artist_name")
    i_tags = columns.get("tags")

    sessions = Interner()
    users = Interner()
    catalogue = Catalogue()
    session_user: list[int] = []
    session_start: list[float] = []
    row_session: list[int] = []
    row_key: list[float] = []
    row_time: list[float] = []
    row_track: list[int] = []
    seen: set[tuple[str, float, str]] = set()
    for line, fields in rows:
        try:
            session, track, artist = read_ids(fields, id_columns)
            user = read_ids(fields, user_column)[0] if user_column else session
            position = _parse_position(fields[i_position]) if i_position is not None else 0
            timestamp = (
                parse_timestamp(fields[i_timestamp]) if i_timestamp is not None else math.nan
            )
            catalogue.check(track, artist)
            s = sessions.index.get(session)
            if s is not None and users.ids[session_user[s]] != user:
                first = users.ids[session_user[s]]
                raise BadRow(
                    f"session {session!r} listed under user {user!r}, first seen under {first!r}"
                )
        except BadRow as exc:
            out.bad_row(line=line, reason=str(exc))
            continue
        key = position if i_position is not None else timestamp
        if (session, key, track) in seen:
            out.duplicates += 1
            out.loaded += 1
            continue
        seen.add((session, key, track))
        t = catalogue.add(
            track=track,
            artist=artist,
            track_name=optional(fields, i_track_name),
            artist_name=optional(fields, i_artist_name),
            tags=split_tags(optional(fields, i_tags)),
        )
        s = sessions.get(session)
        if s == len(session_user):
            session_user.append(users.get(user))
            session_start.append(timestamp)
        elif timestamp < session_start[s]:
            session_start[s] = timestamp
        row_session.append(s)
        row_key.append(key)
        row_time.append(timestamp)
        row_track.append(t)
        out.loaded += 1

    items = catalogue.items()
    seq_of_row = np.asarray(row_session, dtype=np.int64)
    keys = np.asarray(row_key, dtype=np.int64 if i_position is not None else np.float64)
    order = np.lexsort((np.arange(len(row_track)), keys, seq_of_row))
    indptr = np.zeros(len(sessions) + 1, dtype=np.int64)
    np.cumsum(np.bincount(seq_of_row, minlength=len(sessions)), out=indptr[1:])
    sequences = Sequences(
        indptr=indptr,
        items=np.asarray(row_track, dtype=np.int32)[order],
        user=np.asarray(session_user, dtype=np.int32),
        timestamp=np.asarray(session_start, dtype=np.float64),
        ordered=True,
        times=np.asarray(row_time, dtype=np.float64)[order] if i_timestamp is not None else None,
    )
    return dataset_from_sequences(
        name=f"sessions:{path}", items=items, user_ids=users.ids, sequences=sequences, report=report
    )
