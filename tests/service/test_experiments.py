"""A/B variants of the radio, in plain Python: the manifest's specs, their scorers on a small
bundle, and the stable assignment of users."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from indexes.pipeline import BuildResult
from service.bundle_holder import LoadedBundle, load
from service.experiments import (
    CONTROL,
    Variant,
    assign,
    make_variants,
    store_version,
    variant_specs,
)


@pytest.fixture(scope="module")
def loaded(tiny_build: BuildResult) -> Iterator[LoadedBundle]:
    lb = load(tiny_build.path, verify_checksums=False, candidates_per_source=50, search_k=None)
    yield lb
    lb.bundle.close()


def variants_of(
    loaded: LoadedBundle, specs: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> dict[str, Variant]:
    monkeypatch.setattr(loaded.bundle, "manifest", {**loaded.bundle.manifest, "variants": specs})
    return make_variants(loaded.bundle, control=loaded.scorers["tracks"], candidates_per_source=50)


def test_a_manifest_without_variants_has_control_alone() -> None:
    assert variant_specs({}) == {CONTROL: {"share": 1}}
    assert variant_specs({"variants": {}}) == {CONTROL: {"share": 1}}
    specs = variant_specs({"variants": {"b": {"share": 2}, "a": {"share": 0}}})
    assert list(specs) == ["a", "b"]  # sorted by name: the order the hash walks the shares


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        ([1, 2], "must be an object"),
        ({"a": {"share": -1}}, "whole number"),
        ({"a": {"share": 1.5}}, "whole number"),
        ({"a": {}}, "whole number"),
        ({"a": "half"}, "whole number"),
        ({"a": {"share": 0}, "b": {"share": 0}}, "add up to 0"),
    ],
)
def test_bad_variant_specs_are_refused(variants: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        variant_specs({"variants": variants})


def test_variants_replace_the_named_weights_only(
    loaded: LoadedBundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    control = loaded.scorers["tracks"]
    feature = loaded.bundle.ensemble("tracks")["features"][0]
    variants = variants_of(loaded, {
        CONTROL: {"share": 1},
        "heavier": {"share": 3, "weights": {"tracks": {feature: 9.0}}},
    }, monkeypatch)  # fmt: skip
    assert sorted(variants) == [CONTROL, "heavier"]
    assert variants[CONTROL].scorer is control and variants["heavier"].share == 3
    heavier = variants["heavier"].scorer
    assert heavier is not control and heavier.names == control.names
    changed = [n for n, a, b in zip(control.names, control.weights, heavier.weights, strict=True)
               if a != b]  # fmt: skip
    assert changed == [feature]
    assert heavier.weights[control.names.index(feature)] == np.float32(9.0)


def test_a_variant_naming_an_unknown_feature_is_refused(
    loaded: LoadedBundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError, match="unknown features"):
        variants_of(loaded, {"x": {"share": 1, "weights": {"tracks": {"no-such": 1.0}}}},
                    monkeypatch)  # fmt: skip


def test_users_are_assigned_by_a_stable_hash_in_proportion_to_the_shares(
    loaded: LoadedBundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    variants = variants_of(loaded, {
        "a": {"share": 1}, "b": {"share": 3}, "off": {"share": 0},
    }, monkeypatch)  # fmt: skip
    users = [f"user-{i}" for i in range(4000)]
    first = [assign(u, variants) for u in users]
    assert first == [assign(u, variants) for u in users]  # the same in every worker and run
    counts = Counter(first)
    assert "off" not in counts  # a share of 0 gets no one
    assert 0.7 < counts["b"] / len(users) < 0.8  # 3 of 4


def test_a_variant_keeps_its_own_lists_in_the_store() -> None:
    assert store_version("v1", CONTROL) == "v1"
    assert store_version("v1", "heavier") == "v1~heavier"
