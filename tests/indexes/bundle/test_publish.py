"""Atomic publish: old readers keep working, nothing is overwritten, `current` resolves."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from indexes import bundle as fmt
from indexes.bundle import BundleError, open_bundle
from indexes.datasets.synthetic import generate_synthetic
from indexes.pipeline import BuildResult, build_bundle
from tests.conftest import TINY


def test_refuses_non_bundle(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no bundle here"):
        open_bundle(tmp_path)


@pytest.mark.slow
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
