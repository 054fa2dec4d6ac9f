"""Reading the text tables of real data sets: decoding, headers, rows, bad-row rules.

Shared by every text loader (plays CSV, sessions CSV, plays-at log, HetRec), so that they all
decode the same way (UTF-8, latin-1 for lines that are not UTF-8, no BOM), parse fields the same
way and account for their rows the same way: `loaded_rows` reports a row its parser rejects as
bad (with the line and the reason) and counts every other row as loaded, so that
``rows == loaded + bad``; `is_duplicate` and `add_count` count the rows merged into an earlier
one. The track catalogue they build from their rows is `indexes.datasets.catalogue`.

Ids are read exactly as written: `read_ids` does not strip them, so an id such as
``"shy fx & t-power - "`` (trailing space) or ``" intro"`` comes out of the loader, into the bundle
and back out of the API unchanged. An id that is empty or only whitespace is a bad row, reported
with its reason. Every other field (names, numbers, times, tags) has its surrounding whitespace
stripped before it is parsed or stored.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Container, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import numpy as np
from scipy import sparse

from indexes.datasets.report import FileReport, LoadReport

BOM = b"\xef\xbb\xbf"

Splitter = Callable[[str], list[str]]
IdColumns = tuple[tuple[str, int], ...]


class BadRow(Exception):
    """A row that cannot be loaded; the message is the reason reported with its line number."""


class Fields(list[str]):
    """The fields of one row with their surrounding whitespace stripped (what names, numbers,
    times and tags are read from), and in `raw` exactly as written (what `read_ids` reads)."""

    __slots__ = ("raw",)

    def __init__(self, raw: list[str]) -> None:
        super().__init__(map(str.strip, raw))
        self.raw = raw


Rows = Iterator[tuple[int, Fields]]
T = TypeVar("T")
K = TypeVar("K")


def decode_lines(path: Path) -> list[str]:
    """The file's lines: UTF-8 (latin-1 for lines that are not valid UTF-8), without a BOM.

    Lines end at \\n, \\r\\n or \\r only (not at the other Unicode line breaks `str.splitlines`
    knows), so names that contain such characters stay on their line.
    """
    data = path.read_bytes()
    if data.startswith(BOM):
        data = data[len(BOM) :]
    lines: list[str] = []
    append = lines.append
    for raw in data.splitlines():
        try:
            append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            append(raw.decode("latin-1"))
    return lines


def split_csv(line: str) -> list[str]:
    """Comma-separated fields of one line, with standard CSV quoting (raises `csv.Error`)."""
    if '"' not in line:
        return line.split(",")
    return next(csv.reader([line], strict=True))


def split_tab(line: str) -> list[str]:
    """Tab-separated fields without quoting (quotes are part of names, e.g. "Weird Al")."""
    return line.split("\t")


def open_table(
    path: Path,
    report: LoadReport,
    *,
    required: Sequence[str],
    one_of: Sequence[str] = (),
    split: Splitter = split_csv,
) -> tuple[FileReport, dict[str, int], Rows]:
    """Reads a delimited text file with a header line.

    Returns the file's report, the header (lower-cased column name -> field index) and an iterator
    over (line number, `Fields`) of the data rows that have the header's number of fields: the
    fields stripped of surrounding whitespace, with the unstripped ones in `Fields.raw` (for ids).
    The iterator counts rows, blank lines and rows with a wrong number of fields in the report as
    it goes. Usage errors (no file, no header, a missing column) raise `ValueError` at once.
    """
    expected = ", ".join(required)
    if one_of:
        expected += ", and one of " + " or ".join(one_of)
    if not path.is_file():
        raise ValueError(f"{path}: file not found (expected a header with columns {expected})")
    lines = decode_lines(path)
    header_at = next((i for i, line in enumerate(lines) if line.strip()), None)
    if header_at is None:
        raise ValueError(f"{path}: no header line (expected columns {expected})")
    try:
        header = [name.strip().lower() for name in split(lines[header_at])]
    except csv.Error as exc:
        raise ValueError(f"{path}: malformed header line ({exc})") from exc
    columns = _header_columns(path, header, required=required, one_of=one_of)
    file_report = report.file(str(path))
    file_report.blank += header_at
    rows = data_rows(lines, start=header_at + 1, width=len(header), split=split, out=file_report)
    return file_report, columns, rows


def _header_columns(
    path: Path, header: list[str], *, required: Sequence[str], one_of: Sequence[str]
) -> dict[str, int]:
    """Column name -> field index; raises `ValueError` for a repeated or a missing column."""
    columns: dict[str, int] = {}
    for index, name in enumerate(header):
        if name in columns:
            raise ValueError(f"{path}: column {name!r} appears twice in the header")
        columns[name] = index
    missing = [name for name in required if name.lower() not in columns]
    if one_of and not any(name.lower() in columns for name in one_of):
        missing.append(" or ".join(one_of))
    if missing:
        raise ValueError(
            f"{path}: missing required column(s) {', '.join(missing)} "
            f"(header has: {', '.join(header)})"
        )
    return columns


def data_rows(
    lines: list[str], *, start: int, width: int, split: Splitter, out: FileReport
) -> Rows:
    for index in range(start, len(lines)):
        line = lines[index]
        if not line or line.isspace():
            out.blank += 1
            continue
        out.rows += 1
        number = index + 1
        try:
            fields = split(line)
        except csv.Error as exc:
            out.bad_row(line=number, reason=f"malformed CSV ({exc})")
            continue
        if len(fields) != width:
            out.bad_row(line=number, reason=f"expected {width} fields, got {len(fields)}")
            continue
        yield number, Fields(fields)


def loaded_rows(rows: Rows, *, out: FileReport, parse: Callable[[Fields], T]) -> Iterator[T]:
    """What `parse` reads from each row, the row counted as loaded; a row for which it raises
    `BadRow` is reported bad with its line number and the reason, and not loaded.

    Rows are parsed one at a time, after the caller has handled the one before (`parse` may
    look at what earlier rows loaded)."""
    for line, fields in rows:
        try:
            value = parse(fields)
        except BadRow as exc:
            out.bad_row(line=line, reason=str(exc))
            continue
        out.loaded += 1
        yield value


def is_duplicate(key: object, seen: Container[object], *, out: FileReport) -> bool:
    """True (and counted in ``duplicates``) when `key` is already in `seen`: a loaded row merged
    into an earlier one. The caller adds a new key to `seen`."""
    if key in seen:
        out.duplicates += 1
        return True
    return False


def add_count(counts: dict[K, float], key: K, value: float, *, out: FileReport) -> None:
    """Adds `value` to `counts[key]`; a repeated key is a duplicate, summed into the first."""
    if key in counts:
        counts[key] += value
        out.duplicates += 1
    else:
        counts[key] = value


def id_column_spec(columns: dict[str, int], names: Sequence[str]) -> IdColumns:
    """(name, field index) of required id columns, for `read_ids`."""
    return tuple((name, columns[name.lower()]) for name in names)


def read_ids(fields: list[str], spec: IdColumns) -> list[str]:
    """The values of required id columns exactly as written (`Fields.raw`: not stripped).

    Raises `BadRow` for the first one that is empty ("empty track") or only whitespace
    ("track '  ' is only whitespace")."""
    raw = fields.raw if isinstance(fields, Fields) else fields
    values = [raw[index] for _, index in spec]
    for (name, _), value in zip(spec, values, strict=True):
        if not value:
            raise BadRow(f"empty {name}")
        if value.isspace():
            raise BadRow(f"{name} {value!r} is only whitespace")
    return values


def optional(fields: list[str], index: int | None) -> str:
    return fields[index] if index is not None else ""


def parse_count(text: str, column: str) -> float:
    """A finite, non-negative number; raises `BadRow` otherwise."""
    try:
        value = float(text)
    except ValueError:
        raise BadRow(f"{column} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise BadRow(f"{column} {text!r} is not finite")
    if value < 0:
        raise BadRow(f"{column} {text!r} is negative")
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


def split_tags(text: str) -> list[str]:
    """Distinct non-empty tags of a ``|``-separated list, in order."""
    if not text:
        return []
    return list(dict.fromkeys(tag for tag in (part.strip() for part in text.split("|")) if tag))


def count_matrix(
    entries: dict[tuple[int, int], float], *, shape: tuple[int, int]
) -> sparse.csr_matrix:
    """A float32 CSR matrix from {(row, col): value}, without explicit zeros."""
    n = len(entries)
    rows = np.fromiter((key[0] for key in entries), dtype=np.int64, count=n)
    cols = np.fromiter((key[1] for key in entries), dtype=np.int64, count=n)
    data = np.fromiter(entries.values(), dtype=np.float64, count=n).astype(np.float32)
    m = sparse.csr_matrix((data, (rows, cols)), shape=shape, dtype=np.float32)
    m.eliminate_zeros()
    m.sort_indices()
    return m
