"""Reading text tables: decoding, headers, rows, field parsers and the row accounting."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from indexes.datasets.report import FileReport, LoadReport
from indexes.datasets.tables import (
    BadRow,
    Fields,
    add_count,
    count_matrix,
    decode_lines,
    id_column_spec,
    is_duplicate,
    loaded_rows,
    open_table,
    optional,
    parse_count,
    parse_timestamp,
    read_ids,
    split_csv,
    split_tab,
    split_tags,
)


def write(tmp_path: Path, data: bytes, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --- decoding and splitting -------------------------------------------------------------------


def test_decode_lines_drops_the_bom_and_falls_back_to_latin1_per_line(tmp_path: Path) -> None:
    path = write(tmp_path, b"\xef\xbb\xbfa,b\r\nZo\xc3\xab\rBj\xf6rk\n")
    assert decode_lines(path) == ["a,b", "Zoë", "Björk"]


def test_decode_lines_keeps_other_unicode_line_breaks_inside_a_line(tmp_path: Path) -> None:
    path = write(tmp_path, "a\u2028b,c\x85d\nnext\n".encode())
    assert decode_lines(path) == ["a\u2028b,c\x85d", "next"]


def test_split_csv_quotes_and_split_tab_does_not() -> None:
    assert split_csv("a,b,,c") == ["a", "b", "", "c"]
    assert split_csv('a,"b, c","say ""hi"""') == ["a", "b, c", 'say "hi"']
    with pytest.raises(csv.Error):
        split_csv('a,"b')
    assert split_tab('"Weird Al"\tx\t') == ['"Weird Al"', "x", ""]


# --- open_table -------------------------------------------------------------------------------


def test_open_table_reads_the_header_and_counts_rows_as_it_goes(tmp_path: Path) -> None:
    path = write(tmp_path, b'\n  \nUser , Track\nu1,t1\n\nu2\nu3,"t\n u4 ,t4\n')
    report = LoadReport()
    out, columns, rows = open_table(path, report, required=("user", "track"))
    assert columns == {"user": 0, "track": 1}
    assert report.files == [out] and out.path == str(path)
    assert out.blank == 2  # the blank lines before the header
    got = [(line, list(fields), fields.raw) for line, fields in rows]
    assert got == [(4, ["u1", "t1"], ["u1", "t1"]), (8, ["u4", "t4"], [" u4 ", "t4"])]
    assert (out.rows, out.blank, out.bad) == (4, 3, 2)
    assert out.bad_examples[0] == (6, "expected 2 fields, got 1")
    assert out.bad_examples[1][0] == 7 and out.bad_examples[1][1].startswith("malformed CSV")
    assert out.loaded == 0  # loading is the caller's (`loaded_rows`)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "no header line"),
        (b"\n \n", "no header line"),
        (b'user,"track\n', "malformed header line"),
        (b"user,track,User\n", "column 'user' appears twice"),
        (b"user\n", r"missing required column\(s\) track, when or time \(header has: user\)"),
        (b"user,track\n", r"missing required column\(s\) when or time"),
    ],
)
def test_open_table_usage_errors_name_the_file(tmp_path: Path, data: bytes, message: str) -> None:
    path = write(tmp_path, data)
    with pytest.raises(ValueError, match=message) as err:
        open_table(path, LoadReport(), required=("user", "track"), one_of=("when", "time"))
    assert str(path) in str(err.value)


def test_open_table_missing_file_says_what_it_expected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"file not found \(expected .* user, and one of a or b"):
        open_table(tmp_path / "nope.csv", LoadReport(), required=("user",), one_of=("a", "b"))


def test_open_table_accepts_any_of_the_one_of_columns(tmp_path: Path) -> None:
    path = write(tmp_path, b"user,time\n")
    _, columns, rows = open_table(path, LoadReport(), required=("user",), one_of=("when", "time"))
    assert columns == {"user": 0, "time": 1} and list(rows) == []


# --- ids and fields ---------------------------------------------------------------------------


def test_read_ids_reads_raw_values_and_rejects_empty_or_blank_ones() -> None:
    columns = {"user": 0, "track": 1, "name": 2}
    spec = id_column_spec(columns, ("user", "Track"))
    assert spec == (("user", 0), ("Track", 1))
    assert read_ids(Fields([" u ", "t#1 ", " x "]), spec) == [" u ", "t#1 "]
    assert read_ids(["u", "t"], spec) == ["u", "t"]  # a plain list is read as it is
    with pytest.raises(BadRow, match=r"^empty Track$"):
        read_ids(Fields(["u", "", "x"]), spec)
    with pytest.raises(BadRow, match=r"^user '  ' is only whitespace$"):
        read_ids(Fields(["  ", "", "x"]), spec)  # the first bad id is the reason


def test_fields_are_stripped_and_optional_is_empty_without_a_column() -> None:
    fields = Fields([" a ", "b\t"])
    assert list(fields) == ["a", "b"] and fields.raw == [" a ", "b\t"]
    assert optional(fields, 1) == "b" and optional(fields, None) == ""


@pytest.mark.parametrize("text, value", [("3", 3.0), ("0", 0.0), ("1.5", 1.5), ("1e3", 1000.0)])
def test_parse_count_accepts_finite_non_negative_numbers(text: str, value: float) -> None:
    assert parse_count(text, "count") == value


@pytest.mark.parametrize(
    "text, reason",
    [
        ("x", "count 'x' is not a number"),
        ("", "count '' is not a number"),
        ("inf", "count 'inf' is not finite"),
        ("nan", "count 'nan' is not finite"),
        ("-1", "count '-1' is negative"),
    ],
)
def test_parse_count_rejects_the_rest_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(BadRow) as err:
        parse_count(text, "count")
    assert str(err.value) == reason


def test_parse_timestamp_reads_unix_seconds_and_iso_8601_as_utc() -> None:
    noon = datetime(2024, 5, 1, 12, tzinfo=UTC).timestamp()
    assert parse_timestamp("1714564800") == noon
    assert parse_timestamp("1714564800.5") == noon + 0.5
    assert parse_timestamp("2024-05-01T12:00:00Z") == noon
    assert parse_timestamp("2024-05-01 12:00:00") == noon  # no zone: UTC
    assert parse_timestamp("2024-05-01T14:00:00+02:00") == noon
    with pytest.raises(BadRow, match=r"^played_at 'soon' is neither unix seconds nor ISO 8601$"):
        parse_timestamp("soon", "played_at")
    with pytest.raises(BadRow, match=r"^timestamp 'inf' is not finite$"):
        parse_timestamp("inf")


def test_split_tags_keeps_distinct_non_empty_tags_in_order() -> None:
    assert split_tags("") == []
    assert split_tags("rock| indie |rock||  |jazz") == ["rock", "indie", "jazz"]


def test_count_matrix_drops_explicit_zeros_and_sorts_indices() -> None:
    m = count_matrix({(1, 2): 3.0, (0, 1): 0.0, (1, 0): 1.5}, shape=(2, 3))
    assert m.dtype == np.float32 and m.shape == (2, 3)
    assert m.nnz == 2 and m.has_sorted_indices
    assert m.toarray().tolist() == [[0, 0, 0], [1.5, 0, 3]]
    assert count_matrix({}, shape=(0, 0)).shape == (0, 0)


# --- row accounting ---------------------------------------------------------------------------


def test_loaded_rows_reports_rejected_rows_and_counts_the_rest_as_loaded() -> None:
    out = FileReport(path="f")
    rows = iter([(2, Fields(["1"])), (3, Fields(["x"])), (5, Fields(["4"]))])

    def parse(fields: Fields) -> int:
        if not fields[0].isdigit():
            raise BadRow(f"{fields[0]!r} is not a digit")
        return int(fields[0])

    assert list(loaded_rows(rows, out=out, parse=parse)) == [1, 4]
    assert (out.loaded, out.bad, out.bad_examples) == (2, 1, [(3, "'x' is not a digit")])


def test_loaded_rows_parses_a_row_after_the_one_before_is_handled() -> None:
    out = FileReport(path="f")
    seen: list[str] = []

    def parse(fields: Fields) -> str:
        if fields[0] in seen:
            raise BadRow("again")
        return fields[0]

    for value in loaded_rows(
        iter([(1, Fields(["a"])), (2, Fields(["a"])), (3, Fields(["b"]))]), out=out, parse=parse
    ):
        seen.append(value)
    assert seen == ["a", "b"] and out.bad_examples == [(2, "again")]


def test_is_duplicate_and_add_count_count_merged_rows() -> None:
    out = FileReport(path="f")
    seen = {"a"}
    assert is_duplicate("a", seen, out=out) and not is_duplicate("b", seen, out=out)
    assert seen == {"a"}  # the caller adds new keys
    counts: dict[tuple[int, int], float] = {}
    add_count(counts, (0, 1), 2.0, out=out)
    add_count(counts, (0, 2), 1.0, out=out)
    add_count(counts, (0, 1), 0.5, out=out)
    assert counts == {(0, 1): 2.5, (0, 2): 1.0}
    assert out.duplicates == 2
