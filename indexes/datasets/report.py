"""Bad-row accounting shared by every loader: counted, reported with line numbers, never fatal."""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_EXAMPLES = 20


@dataclass
class FileReport:
    """What happened to the rows of one input file."""

    path: str
    rows: int = 0
    loaded: int = 0
    blank: int = 0
    duplicates: int = 0
    bad: int = 0
    bad_examples: list[tuple[int, str]] = field(default_factory=list)

    def bad_row(self, *, line: int, reason: str) -> None:
        self.bad += 1
        if len(self.bad_examples) < MAX_EXAMPLES:
            self.bad_examples.append((line, reason))

    def summary(self) -> str:
        text = (
            f"{self.path}: {self.rows} rows, {self.loaded} loaded, {self.bad} bad, "
            f"{self.duplicates} duplicates merged, {self.blank} blank lines skipped"
        )
        lines = [text]
        for line, reason in self.bad_examples:
            lines.append(f"  line {line}: {reason}")
        if self.bad > len(self.bad_examples):
            lines.append(f"  ... and {self.bad - len(self.bad_examples)} more bad rows")
        return "\n".join(lines)

    def to_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "rows": self.rows,
            "loaded": self.loaded,
            "blank": self.blank,
            "duplicates": self.duplicates,
            "bad": self.bad,
            "bad_examples": [{"line": ln, "reason": r} for ln, r in self.bad_examples],
        }


@dataclass
class LoadReport:
    """The reports of every file a loader read."""

    files: list[FileReport] = field(default_factory=list)

    def file(self, path: str) -> FileReport:
        report = FileReport(path=path)
        self.files.append(report)
        return report

    @property
    def bad(self) -> int:
        return sum(f.bad for f in self.files)

    def summary(self) -> str:
        return "\n".join(f.summary() for f in self.files)

    def to_json(self) -> list[dict[str, object]]:
        return [f.to_json() for f in self.files]
