"""The typed manifest reads every committed format and writes back what it read, and every
file a build writes is named by `indexes.bundle.layout`."""

from __future__ import annotations

import json
from typing import Any

import pytest

from indexes.bundle import layout
from indexes.bundle.errors import ManifestError
from indexes.bundle.layout import Manifest
from indexes.bundle.read import read_manifest, read_typed_manifest
from indexes.pipeline import BuildResult
from tests.conftest import FIXTURES

GOLDEN = FIXTURES / "bundles"


@pytest.mark.parametrize("fmt", layout.SUPPORTED_FORMATS)
def test_golden_manifests_round_trip(fmt: int) -> None:
    raw = json.loads((GOLDEN / f"format-{fmt}" / layout.MANIFEST).read_text())
    back = Manifest.from_json(raw).to_json()
    assert back == raw
    assert json.dumps(back) == json.dumps(raw)  # the keys in the same order too
    assert read_manifest(GOLDEN / f"format-{fmt}") == raw
    assert read_typed_manifest(GOLDEN / f"format-{fmt}").format_version == fmt


def test_a_built_manifest_round_trips(tiny_build: BuildResult) -> None:
    raw = json.loads((tiny_build.path / layout.MANIFEST).read_text())
    assert raw == json.loads(json.dumps(tiny_build.manifest))  # (the config's tuples: lists)
    assert json.dumps(Manifest.from_json(raw).to_json()) == json.dumps(raw)


def expected_files(m: Manifest) -> set[str]:
    """Every file a bundle with this manifest has, as `layout` names them."""
    names: set[str] = {layout.TRACK_ARTIST}
    for entity in layout.ENTITIES:
        names |= {layout.ids(entity), layout.ids_order(entity), layout.listeners(entity)}
        strings = [layout.names(entity)] + ([layout.names_lower(entity)] if m.has_users else [])
        names |= {n for s in strings for n in (s.blob, s.offsets)}
        tables = [layout.table(layout.COOC, entity)]
        spec = m.signals.get(entity, layout.SignalSpec())
        tables += [layout.table(name, entity) for name in spec.tables]
        names |= {n for t in tables for n in (t.indptr, t.indices, t.values)}
        names |= {layout.popularity(entity, p) for p in spec.popularity}
    for ix in m.indexes:
        files = layout.ann(ix.model, ix.entity)
        assert ix.files == files
        names |= {files.index, files.rows, files.slots}
    if m.has_users:
        plays = layout.user_plays()
        names |= {layout.ids(layout.USERS), layout.ids_order(layout.USERS)}
        names |= {plays.indptr, plays.indices, plays.values}
        names |= {layout.user_vectors(u.model) for u in m.user_vectors}
        assert all(u.file == layout.user_vectors(u.model) for u in m.user_vectors)
    return names


def test_every_file_is_named_by_the_layout(tiny_build: BuildResult) -> None:
    m = Manifest.from_json(tiny_build.manifest)
    on_disk = {p.name for p in tiny_build.path.iterdir()} - {layout.MANIFEST}
    assert on_disk == set(m.files) == expected_files(m)
    assert all(ix.sha256 == m.files[ix.files.index].sha256 for ix in m.indexes)


@pytest.mark.parametrize("fmt", layout.SUPPORTED_FORMATS)
def test_the_golden_bundles_are_named_by_the_layout(fmt: int) -> None:
    m = read_typed_manifest(GOLDEN / f"format-{fmt}")
    assert set(m.files) == expected_files(m)


def _golden() -> dict[str, Any]:
    raw: dict[str, Any] = json.loads((GOLDEN / "format-3" / layout.MANIFEST).read_text())
    return raw


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.update(format_version=7), "format_version 7 is not supported"),
        (lambda m: m.pop("indexes"), "missing key 'indexes'"),
        (lambda m: m["files"].update({"../x": {"size": 1, "sha256": ""}}), "bad file name"),
        (lambda m: m["entities"].pop("users"), "entities.users must be a count"),
        (lambda m: m["indexes"][0].pop("dims"), "lacks 'dims'"),
        (lambda m: m["indexes"][0].update(n_items="9"), "n_items must be an integer"),
        (lambda m: m.update(signals=[]), "signals must be an object"),
        (lambda m: m["signals"].update(users={}), "signals.users is not an entity's signals"),
        (
            lambda m: m["signals"]["tracks"]["tables"].update(cooc={"transform": "log1p"}),
            r"signals.tracks.tables.cooc is malformed",
        ),
        (
            lambda m: m["signals"]["tracks"]["popularity"].append("Bad Name"),
            "signals.tracks.popularity 'Bad Name'",
        ),
    ],
)
def test_malformed_manifests_are_refused_naming_the_key(edit: Any, message: str) -> None:
    raw = _golden()
    edit(raw)
    with pytest.raises(ManifestError, match=message):
        Manifest.from_json(raw)
