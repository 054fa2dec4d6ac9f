"""Loader for a timestamped plays log (airplay or listening history): one row per play.

Format: comma-separated with a header line, plain or gzip-compressed (a name ending in ``.gz``);
column names are matched case-insensitively and in any order, extra columns are ignored.

- required: ``artist``, ``title`` and a time column, ``timestamp`` or ``played_at`` (unix
  seconds, or ISO 8601 such as ``2024-05-01 12:00:00``, ``2024-05-01T12:00:00`` or
  ``...T12:00:00+02:00``)
- optional: ``user`` or ``listener`` (default: the whole file is one listener); user ids are read
  exactly as written, like every loader's ids (`indexes.datasets.tables.read_ids`)

A time without a zone is taken as UTC. A station that writes its own local time (Radio Nowy Świat
writes Europe/Warsaw) therefore stays in local time, shifted by its UTC offset: gaps between plays
and time decay are unaffected (up to the hour lost or repeated at a daylight-saving change), and
"the day" of a play is the station's day, which is what its programming follows.

Track identity: one track per normalised (artist, title), see `track_key`:

1. Unicode NFKC, then casefold; runs of whitespace become one space, ends are stripped.
2. Featured-artist remarks are dropped from both artist and title: a bracketed ``(feat. X)``,
   ``[ft. X]``, ``(featuring X)`` or ``(with X)`` anywhere, and a trailing `` feat. X``,
   `` ft. X`` or `` featuring X`` (with a ``,`` or ``;`` before it, if any). ``feat`` and ``ft``
   count with or without the dot; a trailing marker needs something after it, so
   "Little Feat" and "6000 Ft." stay whole. Whitespace is collapsed again.
3. The artist id is the normalised (main) artist; the track id is
   ``f"{artist_id} - {title}"``. Rows with the same track id are the same track, under the artist
   of its first loaded row; the id can meet a second artist only through a `` - `` inside a name
   (in Radio Nowy Świat: "JLT" / "JLT - Johan Leijonhufvud Trio", "Klapa Cambi" / "Klapa Cambi -
   Split"), which is the same recording each time.

Display names are the first spelling seen on a loaded row, as written (``track_name`` the title,
``artist_name`` the artist).

Rules:

- Rows are ordered by (user, time, file order). Per user a session ends where the gap to the
  next play exceeds ``session_gap_minutes``; each session is one ordered `Sequence` with
  ``timestamp`` its first play time and ``times`` the time of each play.
- Users: with a user column, each sequence's user is that user (users in order of first
  appearance). Without one, the file is one listener, named after the file (``station`` when it
  has no usable name), which is useless for collaborative models; so each SESSION becomes its own
  user, ``<listener>@<ISO start time>``.
- Interactions are derived from the sequences: one play per sequence position.
- Bad rows are reported with their line number and not loaded: a wrong number of fields, malformed
  quoting, an empty artist or title (also once normalised, e.g. a title that is only
  ``(feat. X)``), an empty or whitespace-only user, and a time that is neither a finite number nor ISO 8601.
- An exact repeat of (user, time, track id) is kept once and counted in ``duplicates``; it counts
  as loaded (merged into its first copy), so ``rows == loaded + bad``.
- Decoding, blank lines and usage errors follow `indexes.datasets.plays_csv`.
"""

from __future__ import annotations

import gzip
import math
import re
import unicodedata
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from indexes.datasets.catalogue import Catalogue
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

REQUIRED = ("artist", "title")
TIME_COLUMNS = ("timestamp", "played_at")
USER_COLUMNS = ("user", "listener")
DEFAULT_LISTENER = "station"

_Play = tuple[int, float, int]  # (user row, time, track row) of a loaded play

_MARKER = r"(?:(?:feat|ft)\.\s*|(?:feat|ft)\s+|featuring\s+)"
_BRACKETED = re.compile(r"\s*[(\[]\s*(?:" + _MARKER + r"|with\s+)[^)\]]*[)\]]")
_TRAILING = re.compile(r"(?:\s*[,;])?\s" + _MARKER + r"\S.*$")


def normalise(text: str) -> str:
    """One artist or title as it goes into the ids (the rule in the module docstring)."""
    text = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    if "(" in text or "[" in text:
        text = _BRACKETED.sub(" ", text)
    text = _TRAILING.sub("", text)
    return " ".join(text.split())


def track_key(artist: str, title: str) -> tuple[str, str]:
    """(track id, artist id) of a play; raises `ValueError` when either part normalises to empty."""
    artist_id = normalise(artist)
    title_id = normalise(title)
    if not artist_id:
        raise ValueError(f"artist {artist!r} is empty once normalised")
    if not title_id:
        raise ValueError(f"title {title!r} is empty once normalised")
    return f"{artist_id} - {title_id}", artist_id


if TYPE_CHECKING:
    _ConcretePath = Path
else:
    _ConcretePath = type(Path())


class _GzipPath(_ConcretePath):
    """A path whose `read_bytes` gives the decompressed content.

    `tables.open_table` reads a file through `Path.read_bytes` (and names it with `str`), so this
    lets gzip input share its decoding, header checks, row counting and messages unchanged.
    """

    def read_bytes(self) -> bytes:
        try:
            return gzip.decompress(super().read_bytes())
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"{self}: not a readable gzip file ({exc})") from exc


def _listener_name(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".csv", ".tsv", ".txt"):
        name = name.removesuffix(suffix)
    return name.strip() or DEFAULT_LISTENER


def _time_label(t: float) -> str:
    try:
        return datetime.fromtimestamp(t, UTC).replace(tzinfo=None).isoformat()
    except (OverflowError, OSError, ValueError):
        return repr(t)


def load_plays_at(path: Path, *, session_gap_minutes: float = 60.0) -> Dataset:
    """Loads a timestamped plays log (time, artist, title, optional user; see the docstring)."""
    path = Path(path)
    if not (math.isfinite(session_gap_minutes) and session_gap_minutes >= 0):
        raise ValueError(
            f"session_gap_minutes must be a finite number >= 0, got {session_gap_minutes!r}"
        )
    report = LoadReport()
    source = _GzipPath(path) if path.name.lower().endswith(".gz") else path
    out, columns, rows = open_table(source, report, required=REQUIRED, one_of=TIME_COLUMNS)
    row_of = _PlayRows.of(columns)
    tracks = _Tracks()
    users = Interner()
    if not row_of.user:
        users.get(_listener_name(path))
    plays: list[_Play] = []
    seen: set[_Play] = set()
    for user, when, track in loaded_rows(rows, out=out, parse=lambda f: row_of.parse(f, tracks)):
        play = (users.get(user) if row_of.user else 0, when, track)
        if not is_duplicate(play, seen, out=out):
            seen.add(play)
            plays.append(play)
    sequences, user_ids = _sessions(
        plays,
        users=users.ids,
        per_listener=not row_of.user,
        gap_seconds=session_gap_minutes * 60.0,
    )
    return dataset_from_sequences(
        name=f"plays-at:{path}",
        items=tracks.catalogue.items(),
        user_ids=user_ids,
        sequences=sequences,
        report=report,
    )


@dataclass(frozen=True)
class _PlayRows:
    """Where a file's columns are, to read its rows."""

    time_column: str
    time: int
    artist: int
    title: int
    user: IdColumns  # empty without a user column

    @classmethod
    def of(cls, columns: dict[str, int]) -> _PlayRows:
        time_column = next(name for name in TIME_COLUMNS if name in columns)
        user_column = next((name for name in USER_COLUMNS if name in columns), None)
        return cls(
            time_column=time_column,
            time=columns[time_column],
            artist=columns["artist"],
            title=columns["title"],
            user=id_column_spec(columns, (user_column,)) if user_column is not None else (),
        )

    def parse(self, fields: Fields, tracks: _Tracks) -> tuple[str, float, int]:
        """(user, time, track row) of a row ("" as the user without a user column); raises
        `BadRow` (see the module docstring for why)."""
        artist = fields[self.artist]
        title = fields[self.title]
        if not artist:
            raise BadRow("empty artist")
        if not title:
            raise BadRow("empty title")
        user = read_ids(fields, self.user)[0] if self.user else ""
        when = parse_timestamp(fields[self.time], self.time_column)
        return user, when, tracks.row(artist, title)


class _Tracks:
    """The catalogue of the loaded rows, and the track row of each (artist, title) as written."""

    def __init__(self) -> None:
        self.catalogue = Catalogue()
        # (artist, title) as written -> track row, or the reason the pair is a bad row
        self.known: dict[tuple[str, str], int | str] = {}

    def row(self, artist: str, title: str) -> int:
        """The track row of (artist, title); raises `BadRow` when the pair cannot be loaded."""
        t = self.known.get((artist, title))
        if t is None:
            t = _add_track(self.catalogue, artist, title)
            self.known[(artist, title)] = t
        if isinstance(t, str):
            raise BadRow(t)
        return t


def _sessions(
    plays: list[_Play], *, users: list[str], per_listener: bool, gap_seconds: float
) -> tuple[Sequences, list[str]]:
    """The plays in (user, time, file) order cut into sessions where the gap to the next play
    exceeds `gap_seconds`, and the user ids; with `per_listener` (a file without a user column,
    `users` the one listener) each session is its own user."""
    user_of_row = np.asarray([p[0] for p in plays], dtype=np.int64)
    time_of_row = np.asarray([p[1] for p in plays], dtype=np.float64)
    order = np.lexsort((np.arange(len(plays)), time_of_row, user_of_row))
    user_sorted = user_of_row[order]
    times = time_of_row[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = (user_sorted[1:] != user_sorted[:-1]) | (np.diff(times) > gap_seconds)
    starts = np.flatnonzero(first)
    seq_start = times[starts]
    if per_listener:
        users = _session_users(users[0], seq_start)
        seq_user = np.arange(len(starts), dtype=np.int32)
    else:
        seq_user = user_sorted[starts].astype(np.int32)
    sequences = Sequences(
        indptr=np.append(starts, len(order)).astype(np.int64),
        items=np.asarray([p[2] for p in plays], dtype=np.int32)[order],
        user=seq_user,
        timestamp=seq_start,
        ordered=True,
        times=times,
    )
    return sequences, users


def _session_users(listener: str, starts: NDArray[np.float64]) -> list[str]:
    """``<listener>@<ISO start time>`` per session, made distinct where starts are closer than
    the label's resolution."""
    users = Interner()
    for start in starts.tolist():
        label = f"{listener}@{_time_label(start)}"
        while label in users:
            label += "'"
        users.get(label)
    return users.ids


def _add_track(catalogue: Catalogue, artist: str, title: str) -> int | str:
    """The track row of (artist, title) as written, or why the pair cannot be loaded."""
    try:
        track, artist_id = track_key(artist, title)
    except ValueError as exc:
        return str(exc)
    row = catalogue.tracks.index.get(track)
    if row is not None:  # the same id under another artist spelling: the same track
        return row
    return catalogue.add(
        track=track, artist=artist_id, track_name=title, artist_name=artist, tags=()
    )
