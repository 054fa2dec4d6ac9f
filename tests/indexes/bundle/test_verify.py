"""Refusal of damaged bundles, and the `segue verify` command."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from indexes import bundle as fmt
from indexes.bundle import BundleError, open_bundle
from indexes.pipeline import BuildResult
from service.cli import main


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


def test_verify_command(copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", str(copy)]) == 0
    assert "checksums match" in capsys.readouterr().out
    path = copy / "artists.names.bin"
    path.write_bytes(b"x" + path.read_bytes()[1:])
    assert main(["verify", str(copy)]) == 1
    err = capsys.readouterr().err
    assert "artists.names.bin: checksum mismatch" in err
