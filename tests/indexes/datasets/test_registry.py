"""`--dataset` specs name a loader and its argument."""

from __future__ import annotations

from typing import Any

import pytest

import indexes.datasets.synthetic
from indexes.datasets.registry import load_dataset
from indexes.datasets.shape import Dataset
from tests.conftest import FIXTURES

DATASETS = FIXTURES / "datasets"


@pytest.fixture
def synthetic_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The arguments `synthetic:` specs pass to the generator (which is not run)."""
    calls: list[dict[str, Any]] = []

    def fake(**kwargs: Any) -> Any:
        calls.append(kwargs)
        return "generated"

    monkeypatch.setattr(indexes.datasets.synthetic, "generate_synthetic", fake)
    return calls


@pytest.mark.parametrize(
    "spec, n_tracks", [("synthetic", 5000), ("synthetic:800", 800), ("synthetic:1_000", 1000)]
)
def test_synthetic_specs_give_the_size_and_the_seed(
    synthetic_calls: list[dict[str, Any]], spec: str, n_tracks: int
) -> None:
    assert load_dataset(spec, seed=3) == "generated"
    assert synthetic_calls == [{"n_tracks": n_tracks, "seed": 3}]


def test_a_synthetic_size_must_be_a_number(synthetic_calls: list[dict[str, Any]]) -> None:
    with pytest.raises(ValueError, match="the synthetic size must be a number of tracks"):
        load_dataset("synthetic:many")
    assert synthetic_calls == []


@pytest.mark.parametrize(
    "spec",
    [
        f"hetrec:{DATASETS / 'hetrec-mini'}",
        f"plays:{DATASETS / 'plays.csv'}",
        f"sessions:{DATASETS / 'sessions_positions.csv'}",
    ],
)
def test_file_specs_pick_their_loader(spec: str) -> None:
    """Each loader names its data set by its spec (``plays-at:`` and its session gap:
    test_plays_at.py)."""
    data = load_dataset(spec)
    assert isinstance(data, Dataset)
    assert data.name == spec


@pytest.mark.parametrize(
    "spec, message",
    [
        ("movies:x", "unknown kind 'movies'; expected synthetic"),
        ("hetrec", "expected synthetic"),
        ("plays:", "expected synthetic"),
        ("sessions:/no/such/file.csv", "/no/such/file.csv does not exist"),
    ],
)
def test_bad_specs_say_what_is_expected(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as err:
        load_dataset(spec)
    assert repr(spec) in str(err.value)
