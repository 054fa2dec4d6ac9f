"""Bad-row accounting: counts, a capped list of examples, summaries."""

from __future__ import annotations

from indexes.datasets.report import MAX_EXAMPLES, FileReport, LoadReport


def test_bad_rows_are_counted_and_the_first_ones_kept_as_examples() -> None:
    f = FileReport(path="plays.csv")
    for line in range(2, MAX_EXAMPLES + 7):
        f.bad_row(line=line, reason=f"reason {line}")
    assert f.bad == MAX_EXAMPLES + 5
    assert len(f.bad_examples) == MAX_EXAMPLES
    assert f.bad_examples[0] == (2, "reason 2")
    assert f.summary().splitlines()[-1] == "  ... and 5 more bad rows"


def test_file_summary_and_json() -> None:
    f = FileReport(path="p.csv", rows=4, loaded=3, blank=1, duplicates=1)
    f.bad_row(line=3, reason="empty track")
    assert f.summary() == (
        "p.csv: 4 rows, 3 loaded, 1 bad, 1 duplicates merged, 1 blank lines skipped\n"
        "  line 3: empty track"
    )
    assert f.to_json() == {
        "path": "p.csv",
        "rows": 4,
        "loaded": 3,
        "blank": 1,
        "duplicates": 1,
        "bad": 1,
        "bad_examples": [{"line": 3, "reason": "empty track"}],
    }


def test_a_load_report_holds_one_report_per_file_in_order() -> None:
    report = LoadReport()
    assert report.bad == 0 and report.summary() == "" and report.to_json() == []
    a = report.file("a.dat")
    b = report.file("b.dat")
    a.bad_row(line=2, reason="x")
    b.bad_row(line=5, reason="y")
    b.bad_row(line=6, reason="z")
    assert report.files == [a, b]
    assert report.bad == 3
    assert report.summary().splitlines()[0].startswith("a.dat: ")
    assert report.summary().splitlines()[2].startswith("b.dat: ")
    assert [f["path"] for f in report.to_json()] == ["a.dat", "b.dat"]
