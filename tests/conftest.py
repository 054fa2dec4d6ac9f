"""Shared fixtures: a small synthetic catalogue and a bundle built from it, once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from indexes.datasets.shape import Dataset
from indexes.datasets.synthetic import generate_synthetic
from indexes.pipeline import BuildConfig, BuildResult, build_bundle

# The tests of everything but authentication run without it (an explicit SEGUE_AUTH=off, as a
# deployment would have to say it); tests/service/test_auth*.py and the policy test turn it on.
os.environ.setdefault("SEGUE_AUTH", "off")

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
HETREC = SHARED / "datasets" / "hetrec2011-lastfm-2k"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

# small and fast, but with enough plays that every model learns something
# one training thread: the same bundle on every run, so a margin a test asserts is one figure
TINY = BuildConfig(
    dims=16,
    n_trees=8,
    search_k=400,
    seed=7,
    threads=1,
    max_validation_users=300,
    max_validation_seeds=1200,
)


@pytest.fixture(scope="session")
def tiny_data() -> Dataset:
    return generate_synthetic(n_tracks=1500, seed=7)


@pytest.fixture(scope="session")
def tiny_build(tiny_data: Dataset, tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    root = tmp_path_factory.mktemp("bundles")
    return build_bundle(tiny_data, out=root, config=TINY)
