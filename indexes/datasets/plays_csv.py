"""Loader for a plain plays CSV: one row per (user, track) with a play count, and optionally when.

Format: comma-separated with a header line; column names are matched case-insensitively and in
any order, extra columns are ignored.

- required: ``user``, ``track``, ``artist``, ``count``
- optional: ``track_name``, ``artist_name`` (default: the id), ``tags`` (separated by ``|``),
  ``timestamp`` (alias ``last_played``; when both are present ``timestamp`` is used): when the
  row's plays happened; for an aggregated count, the last time the user played the track. Unix
  seconds, or ISO 8601 such as ``2024-05-01T12:00:00Z`` (ISO times without a zone are UTC).

Rules:

- Every non-blank line after the header is a row (``rows``); blank lines are counted in ``blank``.
  Line numbers are physical, 1-based lines of the file (the header is line 1 when it comes first).
- Bad rows are reported with their line number and not loaded: a wrong number of fields, malformed
  quoting, an empty user/track/artist, a count that is not a number, negative or not finite, a
  timestamp (when the column is present) that is empty or neither a finite number nor ISO 8601,
  and a track listed under a different artist than on its first loaded row (the first artist is
  kept).
- A repeated (user, track) is summed into the first one and counted in ``duplicates``; it still
  counts as loaded, so ``rows == loaded + bad``. Its time is the latest of its rows' times.
- Names: the first non-empty name of a track or artist wins. Tags are track metadata: each distinct
  (track, tag) pair listed on any loaded row gets weight 1.
- A missing file, header or required column raises ``ValueError`` naming the file and the columns.

Sequences: one per user, the user's tracks most played first (tracks with a total count of 0 are
left out), ``ordered=False``: a plays CSV says nothing about listening order, so there are no
transitions and no time split. With a timestamp column each sequence's ``times`` are, parallel to
its items, the (user, track)'s time, and its ``timestamp`` (the start) is the earliest of those
times (NaN for a user with no plays); this is what feeds the recency-weighted popularity of
`indexes.signals`.
Without the column, ``times`` is None and the timestamps are NaN.

Decoding, table reading, row validation and the track catalogue live in `indexes.datasets.tables`,
shared with the other text loaders.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from indexes.datasets.report import LoadReport
from indexes.datasets.sessions_csv import parse_timestamp
from indexes.datasets.shape import Dataset, Interner, sequences_from_interactions
from indexes.datasets.tables import (
    BadRow,
    Catalogue,
    count_matrix,
    id_column_spec,
    open_table,
    optional,
    parse_count,
    read_ids,
    split_tags,
)

REQUIRED = ("user", "track", "artist", "count")
TIME_COLUMNS = ("timestamp", "last_played")  # the first present one is used


def load_plays_csv(path: Path) -> Dataset:
    """Loads a plays CSV (user, track, artist, count; see the module docstring for the rules)."""
    path = Path(path)
    report = LoadReport()
    out, columns, rows = open_table(path, report, required=REQUIRED)
    id_columns = id_column_spec(columns, ("user", "track", "artist"))
    i_count = columns["count"]
    i_track_name = columns.get("track_name")
    i_artist_name = columns.get("artist_name")
    i_tags = columns.get("tags")
    time_column = next((name for name in TIME_COLUMNS if name in columns), "")
    i_time = columns.get(time_column)

    users = Interner()
    catalogue = Catalogue()
    plays: dict[tuple[int, int], float] = {}
    times: dict[tuple[int, int], float] = {}
    for line, fields in rows:
        try:
            user, track, artist = read_ids(fields, id_columns)
            count = parse_count(fields[i_count], "count")
            timestamp = parse_timestamp(fields[i_time], time_column) if i_time is not None else 0.0
            catalogue.check(track, artist)
        except BadRow as exc:
            out.bad_row(line=line, reason=str(exc))
            continue
        t = catalogue.add(
            track=track,
            artist=artist,
            track_name=optional(fields, i_track_name),
            artist_name=optional(fields, i_artist_name),
            tags=split_tags(optional(fields, i_tags)),
        )
        key = (users.get(user), t)
        if key in plays:
            plays[key] += count
            out.duplicates += 1
        else:
            plays[key] = count
        if i_time is not None:
            times[key] = max(timestamp, times.get(key, timestamp))
        out.loaded += 1

    items = catalogue.items()
    interactions = count_matrix(plays, shape=(len(users), items.n_tracks))
    return Dataset(
        name=f"plays:{path}",
        items=items,
        user_ids=np.asarray(users.ids, dtype=str),
        interactions=interactions,
        sequences=sequences_from_interactions(
            interactions, times=times if i_time is not None else None
        ),
        interactions_from_sequences=False,
        report=report,
    )
