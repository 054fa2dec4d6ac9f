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

Decoding, table reading and row validation live in `indexes.datasets.tables`, the track catalogue
in `indexes.datasets.catalogue`, shared with the other text loaders.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from indexes.datasets.catalogue import Catalogue, NameColumns
from indexes.datasets.report import LoadReport
from indexes.datasets.shape import Dataset, Interner, dataset_from_counts
from indexes.datasets.tables import (
    Fields,
    IdColumns,
    add_count,
    count_matrix,
    id_column_spec,
    loaded_rows,
    open_table,
    parse_count,
    parse_timestamp,
    read_ids,
)

REQUIRED = ("user", "track", "artist", "count")
TIME_COLUMNS = ("timestamp", "last_played")  # the first present one is used


def load_plays_csv(path: Path) -> Dataset:
    """Loads a plays CSV (user, track, artist, count; see the module docstring for the rules)."""
    path = Path(path)
    report = LoadReport()
    out, columns, rows = open_table(path, report, required=REQUIRED)
    row_of = _PlayRows.of(columns)
    names = NameColumns.of(columns)
    users = Interner()
    catalogue = Catalogue()
    plays: dict[tuple[int, int], float] = {}
    times: dict[tuple[int, int], float] = {}
    for play in loaded_rows(rows, out=out, parse=lambda f: row_of.parse(f, catalogue=catalogue)):
        t = catalogue.add_row(play.fields, track=play.track, artist=play.artist, names=names)
        key = (users.get(play.user), t)
        add_count(plays, key, play.count, out=out)
        if row_of.timed:
            times[key] = max(play.timestamp, times.get(key, play.timestamp))
    items = catalogue.items()
    interactions = count_matrix(plays, shape=(len(users), items.n_tracks))
    return dataset_from_counts(
        name=f"plays:{path}",
        items=items,
        user_ids=users.ids,
        interactions=interactions,
        times=times if row_of.timed else None,
        report=report,
    )


@dataclass(frozen=True)
class _Play:
    """One row: who played which track of which artist, how often, and when (0 untimed)."""

    fields: Fields
    user: str
    track: str
    artist: str
    count: float
    timestamp: float


@dataclass(frozen=True)
class _PlayRows:
    """Where a file's columns are, to read its rows."""

    ids: IdColumns
    count: int
    time_column: str  # "" without one
    time: int | None

    @property
    def timed(self) -> bool:
        return self.time is not None

    @classmethod
    def of(cls, columns: dict[str, int]) -> _PlayRows:
        time_column = next((name for name in TIME_COLUMNS if name in columns), "")
        return cls(
            ids=id_column_spec(columns, ("user", "track", "artist")),
            count=columns["count"],
            time_column=time_column,
            time=columns.get(time_column),
        )

    def parse(self, fields: Fields, *, catalogue: Catalogue) -> _Play:
        """The row's play; raises `BadRow` (see the module docstring for why)."""
        user, track, artist = read_ids(fields, self.ids)
        count = parse_count(fields[self.count], "count")
        timestamp = (
            parse_timestamp(fields[self.time], self.time_column) if self.time is not None else 0.0
        )
        catalogue.check(track, artist)
        return _Play(
            fields=fields, user=user, track=track, artist=artist, count=count, timestamp=timestamp
        )
