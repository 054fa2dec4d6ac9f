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
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from indexes.datasets.report import LoadReport
from indexes.datasets.sessions_csv import parse_timestamp
from indexes.datasets.shape import Dataset, Interner, Sequences, dataset_from_sequences
from indexes.datasets.tables import BadRow, Catalogue, id_column_spec, open_table, read_ids

REQUIRED = ("artist", "title")
TIME_COLUMNS = ("timestamp", "played_at")
USER_COLUMNS = ("user", "listener")
DEFAULT_LISTENER = "station"

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
    time_name = next(name for name in TIME_COLUMNS if name in columns)
    i_time = columns[time_name]
    i_artist = columns["artist"]
    i_title = columns["title"]
    user_name = next((name for name in USER_COLUMNS if name in columns), None)
    user_column = id_column_spec(columns, (user_name,)) if user_name is not None else ()

    users = Interner()
    if not user_column:
        users.get(_listener_name(path))
    catalogue = Catalogue()
    # (artist, title) as written -> track row, or the reason the pair is a bad row
    known: dict[tuple[str, str], int | str] = {}
    row_user: list[int] = []
    row_time: list[float] = []
    row_track: list[int] = []
    seen: set[tuple[int, float, int]] = set()
    for line, fields in rows:
        try:
            artist = fields[i_artist]
            title = fields[i_title]
            if not artist:
                raise BadRow("empty artist")
            if not title:
                raise BadRow("empty title")
            user = read_ids(fields, user_column)[0] if user_column else ""
            when = parse_timestamp(fields[i_time], time_name)
            t = known.get((artist, title))
            if t is None:
                t = _add_track(catalogue, artist, title)
                known[(artist, title)] = t
            if isinstance(t, str):
                raise BadRow(t)
        except BadRow as exc:
            out.bad_row(line=line, reason=str(exc))
            continue
        out.loaded += 1
        u = users.get(user) if user_column else 0
        key = (u, when, t)
        if key in seen:
            out.duplicates += 1
            continue
        seen.add(key)
        row_user.append(u)
        row_time.append(when)
        row_track.append(t)

    items = catalogue.items()
    user_of_row = np.asarray(row_user, dtype=np.int64)
    time_of_row = np.asarray(row_time, dtype=np.float64)
    order = np.lexsort((np.arange(len(row_track)), time_of_row, user_of_row))
    user_sorted = user_of_row[order]
    times = time_of_row[order]
    n = len(order)
    first = np.ones(n, dtype=bool)
    first[1:] = (user_sorted[1:] != user_sorted[:-1]) | (
        np.diff(times) > session_gap_minutes * 60.0
    )
    starts = np.flatnonzero(first)
    indptr = np.append(starts, n).astype(np.int64)
    seq_start = times[starts]
    if not user_column:
        listener = users.ids[0]
        users = Interner()
        for start in seq_start.tolist():
            label = f"{listener}@{_time_label(start)}"
            while label in users:  # starts closer than the label's resolution
                label += "'"
            users.get(label)
        seq_user = np.arange(len(starts), dtype=np.int32)
    else:
        seq_user = user_sorted[starts].astype(np.int32)
    sequences = Sequences(
        indptr=indptr,
        items=np.asarray(row_track, dtype=np.int32)[order],
        user=seq_user,
        timestamp=seq_start,
        ordered=True,
        times=times,
    )
    return dataset_from_sequences(
        name=f"plays-at:{path}", items=items, user_ids=users.ids, sequences=sequences, report=report
    )


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
