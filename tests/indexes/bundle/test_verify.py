"""Refusal of damaged bundles, and the `segue verify` command."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from indexes import bundle as fmt
from indexes.bundle import BundleError, open_bundle
from indexes.bundle.seal import seal
from indexes.bundle.verified import Verdict, verify_once
from indexes.pipeline import BuildResult
from service.cli import main
from tests.indexes.bundle.damage import corrupt_children


@pytest.fixture
def copy(tiny_build: BuildResult, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(tiny_build.path, dst)
    return dst


def _resign(bundle_dir: Path, name: str, *, key: bytes | None = None) -> None:
    """Updates the manifest (and its seal) so that a deliberately damaged file passes the
    checksum check: what only the builder (or whoever holds the signing key) can do."""
    m = json.loads((bundle_dir / "manifest.json").read_text())
    sha = fmt.sha256_file(bundle_dir / name)
    m["files"][name] = {"size": (bundle_dir / name).stat().st_size, "sha256": sha}
    for entry in m["indexes"]:
        if entry["file"] == name:
            entry["sha256"] = sha
    (bundle_dir / "manifest.json").write_text(json.dumps(seal(m, key=key)))


def _edit_manifest(bundle_dir: Path, edit: object, *, reseal: bool = True) -> None:
    m = json.loads((bundle_dir / "manifest.json").read_text())
    edit(m)  # type: ignore[operator]
    (bundle_dir / "manifest.json").write_text(json.dumps(seal(m, key=None) if reseal else m))


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


def test_verify_command(copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", str(copy)]) == 0
    assert "checksums, seal and every index node match" in capsys.readouterr().out
    path = copy / "artists.names.bin"
    path.write_bytes(b"x" + path.read_bytes()[1:])
    assert main(["verify", str(copy)]) == 1
    err = capsys.readouterr().err
    assert "artists.names.bin: checksum mismatch" in err


def _entry(bundle_dir: Path, name: str) -> dict:  # type: ignore[type-arg]
    m = json.loads((bundle_dir / "manifest.json").read_text())
    return next(e for e in m["indexes"] if e["file"] == name)


def test_a_built_manifest_is_sealed(copy: Path) -> None:
    m = json.loads((copy / "manifest.json").read_text())
    assert set(m["seal"]) == {"sha256"}  # no signing key: a sha256 seal only
    open_bundle(copy).close()


def test_refuses_an_edited_ensemble_weight(copy: Path) -> None:
    def edit(m: dict) -> None:  # type: ignore[type-arg]
        weights = m["ensemble"]["tracks"]["weights"]
        weights[0] += 8.0  # the probe: 1.22 -> 9.22

    _edit_manifest(copy, edit, reseal=False)
    with pytest.raises(BundleError, match=r"manifest\.json: its fields do not match its seal"):
        open_bundle(copy, verify_checksums=False)


def test_refuses_an_edited_variant(copy: Path) -> None:
    _edit_manifest(copy, lambda m: m.update(variants={"x": {"share": 1}}), reseal=False)
    with pytest.raises(BundleError, match=r"manifest\.json: its fields do not match its seal"):
        open_bundle(copy, verify_checksums=False)


def test_refuses_an_index_sha256_that_is_not_its_files_entry(copy: Path) -> None:
    def edit(m: dict) -> None:  # type: ignore[type-arg]
        m["indexes"][0]["sha256"] = "0" * 64

    _edit_manifest(copy, edit)  # resealed: only the two sha256 disagree
    with pytest.raises(BundleError, match=r"sha256 of index als\.tracks\.ann differs"):
        open_bundle(copy, verify_checksums=False)


def test_signed_bundles(copy: Path) -> None:
    _edit_manifest(copy, lambda m: m, reseal=True)
    with pytest.raises(BundleError, match=r"manifest\.json: not signed"):
        open_bundle(copy, signing_key=b"key-1")
    m = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps(seal(m, key=b"key-1")))
    open_bundle(copy, signing_key=b"key-1").close()
    open_bundle(copy).close()  # no key configured: the sha256 seal is still checked
    with pytest.raises(BundleError, match=r"manifest\.json: bad signature"):
        open_bundle(copy, signing_key=b"key-2")
    # an edit resealed without the key: the sha256 matches, the signature does not
    _edit_manifest(copy, lambda m: m["ensemble"]["tracks"]["weights"].__setitem__(0, 9.22))
    m = json.loads((copy / "manifest.json").read_text())
    m["seal"]["hmac_sha256"] = seal(json.loads(json.dumps(m)), key=b"key-1")["seal"]["sha256"]
    (copy / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleError, match=r"manifest\.json: bad signature"):
        open_bundle(copy, signing_key=b"key-1")


@pytest.mark.parametrize("value", [0x3FFFFFFF, -5, 10**6])
def test_refuses_corrupted_child_ids_with_the_size_kept(copy: Path, value: int) -> None:
    e = _entry(copy, "als.tracks.ann")
    corrupt_children(copy / "als.tracks.ann", n_items=e["n_items"], dims=e["dims"], value=value)
    with pytest.raises(BundleError, match=r"als\.tracks\.ann: checksum mismatch"):
        fmt.verify(copy)
    _resign(copy, "als.tracks.ann")  # even when the manifest was remade to match
    with pytest.raises(BundleError, match=r"als\.tracks\.ann: a (split|leaf) node"):
        fmt.verify(copy)


def test_refuses_a_corrupted_item_node(copy: Path) -> None:
    e = _entry(copy, "word2vec.tracks.ann")
    path = copy / "word2vec.tracks.ann"
    words = np.fromfile(path, dtype=np.int32)
    words[(e["dims"] + 3) * 7] = 40  # item 7's n_descendants: Annoy would read its vector as ids
    words.tofile(path)
    _resign(copy, "word2vec.tracks.ann")
    with pytest.raises(BundleError, match=r"word2vec\.tracks\.ann: item node 7"):
        fmt.verify(copy)


def test_every_index_of_a_built_bundle_passes_the_tree_check(tiny_build: BuildResult) -> None:
    fmt.verify(tiny_build.path).close()


def test_verify_once_per_host(copy: Path, tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    first = verify_once(copy, checksums=True, signing_key=None, marker_dir=markers)
    again = verify_once(copy, checksums=True, signing_key=None, marker_dir=markers)
    assert first == Verdict(error=None, here=True) and again == Verdict(error=None, here=False)
    # corrupted in place, size kept, after the verification: the marker no longer applies
    e = _entry(copy, "als.tracks.ann")
    corrupt_children(copy / "als.tracks.ann", n_items=e["n_items"], dims=e["dims"])
    bad = verify_once(copy, checksums=True, signing_key=None, marker_dir=markers)
    assert bad.here and bad.error is not None and "als.tracks.ann: checksum mismatch" in bad.error
    other = verify_once(copy, checksums=True, signing_key=None, marker_dir=markers)
    assert other == Verdict(error=bad.error, here=False)  # another worker trusts the marker
    # without checksums the tree check still refuses it
    nosum = verify_once(copy, checksums=False, signing_key=None, marker_dir=markers)
    assert nosum.here and nosum.error is not None and "node" in nosum.error
    # a marker written under another key is not trusted
    keyed = verify_once(copy, checksums=True, signing_key=b"k", marker_dir=markers)
    assert keyed.here
