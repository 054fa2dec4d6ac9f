"""Bundle round trip, refusal of damaged bundles, atomic publish."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from indexes import bundle as fmt
from indexes.bundle import BundleError, open_bundle
from indexes.datasets.shape import Dataset
from indexes.datasets.synthetic import generate_synthetic
from indexes.pipeline import BuildResult, build_bundle
from service.cli import main
from tests.conftest import TINY


def test_round_trip(tiny_build: BuildResult, tiny_data: Dataset) -> None:
    items = tiny_data.items
    with open_bundle(tiny_build.path.parent) as b:  # the root: follows `current`
        assert b.path == tiny_build.path
        assert b.version == tiny_build.version
        assert len(b.tracks) == items.n_tracks and len(b.artists) == items.n_artists
        for row in (0, 1, 77, items.n_tracks - 1):
            tid = str(items.track_ids[row])
            assert b.tracks.row_of(tid) == row
            assert b.tracks.id_of(row) == tid
            assert b.tracks.names[row] == items.track_names[row]
            assert b.tracks.artist is not None and b.tracks.artist[row] == items.track_artist[row]
        assert b.artists.row_of(str(items.artist_ids[3])) == 3
        for missing in ("nope", "", "t" * 200, "t0001\x00"):
            assert b.tracks.row_of(missing) is None
        assert {(m, e) for m, e in b.indexes} == {
            (m, e) for m in ("als", "word2vec", "content") for e in ("tracks", "artists")
        }
        for ix in b.indexes.values():
            assert mapped(ix.rows) and mapped(ix.slots)  # shared by processes, not copied
            assert ix.vectors is not None and mapped(ix.vectors)
            assert type(ix.rows) is np.ndarray  # no np.memmap overhead on every index op
            assert ix.index.get_n_items() == ix.n_items
            row = int(ix.rows[0])
            rows, dists = ix.neighbours(row, 10)
            assert len(rows) == 10 and row not in rows and (np.diff(dists) >= -1e-6).all()
        with pytest.raises(IndexError):
            b.indexes[("als", "tracks")].neighbours(10**9, 5)


def mapped(a: object) -> bool:
    """Whether an array's memory is a file mapping (an np.memmap somewhere down its bases)."""
    while a is not None:
        if isinstance(a, np.memmap):
            return True
        a = getattr(a, "base", None)
    return False


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


# --- refusing damaged bundles ---------------------------------------------------------------


@pytest.fixture
def copy(tiny_build: BuildResult, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(tiny_build.path, dst)
    return dst


def _resign(bundle_dir: Path, name: str) -> None:
    """Updates the manifest so that a deliberately damaged file passes the checksum check."""
    m = json.loads((bundle_dir / "manifest.json").read_text())
    m["files"][name] = {
        "size": (bundle_dir / name).stat().st_size,
        "sha256": fmt.sha256_file(bundle_dir / name),
    }
    (bundle_dir / "manifest.json").write_text(json.dumps(m))


def _edit_manifest(bundle_dir: Path, edit: object) -> None:
    m = json.loads((bundle_dir / "manifest.json").read_text())
    edit(m)  # type: ignore[operator]
    (bundle_dir / "manifest.json").write_text(json.dumps(m))


def test_refuses_flipped_byte(copy: Path) -> None:
    path = copy / "als.tracks.ann"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"als\.tracks\.ann: checksum mismatch"):
        open_bundle(copy)


def test_refuses_truncated_file(copy: Path) -> None:
    path = copy / "word2vec.tracks.ann"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(BundleError, match=r"word2vec\.tracks\.ann: truncated"):
        open_bundle(copy)


def test_refuses_truncated_index_even_with_a_matching_checksum(copy: Path) -> None:
    path = copy / "content.tracks.ann"
    path.write_bytes(path.read_bytes()[:-30])
    _resign(copy, "content.tracks.ann")
    with pytest.raises(BundleError, match=r"content\.tracks\.ann: .*not a whole number"):
        open_bundle(copy)


@pytest.mark.parametrize("dims", [15, 17, 32, 1])
def test_refuses_wrong_dims(copy: Path, dims: int) -> None:
    def edit(m: dict) -> None:  # type: ignore[type-arg]
        m["indexes"][0]["dims"] = dims

    _edit_manifest(copy, edit)
    with pytest.raises(BundleError, match=r"als\.tracks\.ann"):
        open_bundle(copy)


def test_refuses_wrong_item_count(copy: Path) -> None:
    def edit(m: dict) -> None:  # type: ignore[type-arg]
        m["indexes"][0]["n_items"] += 1

    _edit_manifest(copy, edit)
    with pytest.raises(BundleError, match=r"als\.tracks\.rows\.npy: expected \d+ entries"):
        open_bundle(copy)


def test_refuses_rows_out_of_range(copy: Path) -> None:
    rows = np.load(copy / "als.tracks.rows.npy")
    rows[3] = 10**6
    np.save(copy / "als.tracks.rows.npy", rows)
    _resign(copy, "als.tracks.rows.npy")
    with pytest.raises(BundleError, match=r"als\.tracks\.rows\.npy: rows out of range"):
        open_bundle(copy)


def test_refuses_missing_file(copy: Path) -> None:
    (copy / "tracks.ids.npy").unlink()
    with pytest.raises(BundleError, match=r"tracks\.ids\.npy: missing"):
        open_bundle(copy)


def test_refuses_unknown_format(copy: Path) -> None:
    _edit_manifest(copy, lambda m: m.update(format_version=99))
    with pytest.raises(BundleError, match="format_version 99 is not supported"):
        open_bundle(copy)


def test_refuses_broken_manifest(copy: Path) -> None:
    (copy / "manifest.json").write_text('{"format_version": 1,')
    with pytest.raises(BundleError, match=r"manifest\.json: not valid JSON"):
        open_bundle(copy)


def test_refuses_non_bundle(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no bundle here"):
        open_bundle(tmp_path)


def test_verify_command(copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", str(copy)]) == 0
    assert "checksums match" in capsys.readouterr().out
    path = copy / "artists.names.bin"
    path.write_bytes(b"x" + path.read_bytes()[1:])
    assert main(["verify", str(copy)]) == 1
    err = capsys.readouterr().err
    assert "artists.names.bin: checksum mismatch" in err


# --- publishing -----------------------------------------------------------------------------


def test_publish_keeps_old_readers_working(tmp_path: Path) -> None:
    """A reader holding the old bundle keeps answering, identically, while new ones are published
    and the old directory is pruned; `current` always points at a complete bundle."""
    root = tmp_path / "bundles"
    small = generate_synthetic(n_tracks=400, seed=1)
    config = TINY.__class__(**{**TINY.__dict__, "keep": 1})
    first = build_bundle(small, out=root, config=config)
    old = open_bundle(root)
    ann = old.indexes[("als", "tracks")]
    probe = [int(r) for r in ann.rows[:50]]
    expected = [ann.neighbours(r, 10)[0].tolist() for r in probe]

    errors: list[BaseException] = []
    answers = 0
    stop = threading.Event()

    def reader() -> None:
        nonlocal answers
        try:
            while not stop.is_set():
                for r, want in zip(probe, expected, strict=True):
                    assert ann.neighbours(r, 10)[0].tolist() == want
                    answers += 1
                # a fresh open at any moment sees a complete bundle
                with open_bundle(root, verify_checksums=False) as b:
                    assert b.version
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    t = threading.Thread(target=reader)
    t.start()
    try:
        versions = [first.version]
        for seed in (2, 3):
            data = generate_synthetic(n_tracks=400, seed=seed)
            versions.append(build_bundle(data, out=root, config=config).version)
    finally:
        stop.set()
        t.join()
    assert not errors, errors
    assert answers > 0
    assert not (root / first.version).exists()  # pruned (keep=1) while still mmapped here
    assert [r for r in probe[:3]] and ann.neighbours(probe[0], 10)[0].tolist() == expected[0]
    old.close()
    assert fmt.resolve_current(root).name == versions[-1]
    assert sorted(p.name for p in root.iterdir()) == [versions[-1], "current"]


def test_publish_never_overwrites(tiny_build: BuildResult, tmp_path: Path) -> None:
    staging = tmp_path / ".staging-x"
    staging.mkdir()
    with pytest.raises(BundleError, match="already exists"):
        fmt.publish(staging=staging, root=tiny_build.path.parent, version=tiny_build.version)


def test_vectorised_similarities_match_annoy(tiny_build: BuildResult) -> None:
    """The zero-copy view into the .ann file gives Annoy's own cosine similarities."""
    with open_bundle(tiny_build.path) as b:
        for ann in b.indexes.values():
            assert ann.vectors is not None and ann.vectors.shape == (ann.n_items, ann.dims)
            a = int(ann.rows[3])
            rows = np.arange(min(200, len(ann.slots)), dtype=np.int32)
            fast = ann.similarities(a, rows)
            slow = np.array([ann.similarity(a, int(r)) for r in rows], dtype=np.float32)
            assert np.allclose(fast, slow, atol=1e-4)


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


def test_open_bundle_gives_every_index_the_ann_observer(tiny_build: BuildResult) -> None:
    """The service's latency metric is passed in, not patched onto each index afterwards."""
    seen: list[tuple[str, str]] = []
    with open_bundle(tiny_build.path, on_ann_query=lambda m, e, _s: seen.append((m, e))) as b:
        keys = list(b.indexes)
        for ix in b.indexes.values():
            ix.neighbours(int(ix.rows[0]), 3)
        assert b.users is not None
        als = b.indexes[("als", "tracks")]
        rows, sims = als.nearest_to_vector(b.users.vectors["als"][0], n=5)
        assert len(rows) == 5 and (np.diff(sims) <= 1e-6).all()
    assert seen == [*keys, ("als", "tracks")]
    # the typed manifest says what the JSON says
    assert b.typed_manifest.to_json() == b.manifest
