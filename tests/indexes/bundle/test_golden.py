"""Committed bundles of every format this segue reads keep loading and answering the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from indexes.bundle import SUPPORTED_FORMATS, open_bundle
from indexes.ensemble import Scorer
from tests.conftest import FIXTURES

GOLDEN = FIXTURES / "bundles"


@pytest.mark.parametrize("fmt", SUPPORTED_FORMATS)
def test_golden_bundle_loads_and_answers(fmt: int) -> None:
    path: Path = GOLDEN / f"format-{fmt}"
    expected = json.loads((GOLDEN / f"format-{fmt}.expected.json").read_text())
    with open_bundle(path) as b:
        assert b.manifest["format_version"] == fmt
        assert len(b.tracks) == 120
        for model, want in expected.items():
            row = b.tracks.row_of(want["track"])
            assert row is not None
            got = [
                b.tracks.id_of(int(r)) for r in b.indexes[(model, "tracks")].neighbours(row, 5)[0]
            ]
            assert got == want["neighbours"]
        if fmt >= 2:
            assert b.users is not None and b.users.vectors["als"].shape[1] == 8
            assert b.tracks.names_lower is not None
        else:
            assert b.users is None
        if fmt >= 3:  # the plain signals and the data's time span
            assert {"cooc", "cooc_count", "trans", "trans_recent"} <= set(b.tables["tracks"])
            assert "recent_7d" in b.popularity["tracks"] and b.manifest["time"]["as_of"]
        else:
            assert set(b.tables["tracks"]) == {"cooc"} and set(b.popularity["tracks"]) == {
                "popularity"
            }
        for entity in ("tracks", "artists"):
            scorer = Scorer(b, entity=entity)
            assert set(b.ensemble(entity)["features"]) <= set(scorer.names)  # the rest weigh 0
            rows, _ = scorer.top(0, 5)
            assert len(rows) == 5 and 0 not in rows
