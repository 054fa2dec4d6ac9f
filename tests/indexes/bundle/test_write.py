"""What a build writes: the manifest lists every file, indexes open whatever their tree count."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from indexes import bundle as fmt
from indexes.bundle import open_bundle
from indexes.datasets.synthetic import generate_synthetic
from indexes.pipeline import BuildResult, build_bundle
from tests.conftest import TINY


def test_manifest_describes_everything(tiny_build: BuildResult) -> None:
    m = json.loads((tiny_build.path / "manifest.json").read_text())
    assert m["format_version"] == fmt.FORMAT_VERSION
    assert m["source"]["tracks"] == 1500
    for ix in m["indexes"]:
        assert ix["sha256"] == m["files"][ix["file"]]["sha256"]
        assert {"model", "entity", "dims", "metric", "n_items", "n_trees", "file"} <= ix.keys()
    for e in ("tracks", "artists"):
        w = m["ensemble"][e]
        assert w["fitted"] and len(w["weights"]) == len(w["features"])
    on_disk = {p.name for p in tiny_build.path.iterdir()} - {"manifest.json"}
    assert on_disk == set(m["files"])


@pytest.mark.slow
def test_an_index_of_a_few_dozen_items_with_many_trees_opens(tmp_path: Path) -> None:
    """On a few dozen items Annoy's load() counts more roots than were built; the manifest
    records what a reader sees, so the loader's tree check still holds."""
    from dataclasses import replace

    data = generate_synthetic(n_tracks=300, seed=5)
    built = build_bundle(data, out=tmp_path, config=replace(TINY, n_trees=50))
    b = open_bundle(built.path, verify_checksums=True)
    try:
        assert len(b.artists) < 60
        assert all(ix.n_trees >= 50 for ix in b.indexes.values())
    finally:
        b.close()
