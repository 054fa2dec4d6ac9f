"""A/B variants of the radio: defined in the bundle's manifest, assigned by a stable user hash.

`manifest["variants"]` maps a variant name to `{"share": N, "weights": {"tracks": {feature: w}}}`:
the share of users it gets (relative to the others) and ensemble weights that replace the
bundle's fitted ones for the named features. A bundle without variants has one, `control`, with
the fitted weights. The variant of a user is the same in every worker, pod and run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from indexes.bundle import Bundle
from indexes.ensemble import Scorer

CONTROL = "control"


@dataclass(frozen=True)
class Variant:
    name: str
    share: int
    scorer: Scorer  # the tracks scorer of this variant (its ensemble weights)


def variant_specs(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The manifest's variants, checked; {control: share 1} when it defines none."""
    specs = manifest.get("variants") or {}
    if not isinstance(specs, dict):
        raise ValueError("manifest 'variants' must be an object")
    if not specs:
        return {CONTROL: {"share": 1}}
    for name, spec in specs.items():
        share = spec.get("share") if isinstance(spec, dict) else None
        if not isinstance(share, int) or share < 0:
            raise ValueError(f"variant {name!r}: 'share' must be a whole number >= 0")
    if sum(int(s["share"]) for s in specs.values()) <= 0:
        raise ValueError("variants: the shares add up to 0")
    return dict(sorted(specs.items()))


def make_variants(
    bundle: Bundle, *, control: Scorer, candidates_per_source: int
) -> dict[str, Variant]:
    out: dict[str, Variant] = {}
    for name, spec in variant_specs(bundle.manifest).items():
        overrides = (spec.get("weights") or {}).get("tracks") or {}
        if not overrides:
            scorer = control
        else:
            fitted = bundle.ensemble("tracks")
            unknown = set(overrides) - set(fitted["features"])
            if unknown:
                raise ValueError(f"variant {name!r}: unknown features {sorted(unknown)}")
            weights = [float(overrides.get(f, w)) for f, w in
                       zip(fitted["features"], fitted["weights"], strict=True)]  # fmt: skip
            scorer = Scorer(bundle, entity="tracks", candidates_per_source=candidates_per_source,
                            weights={**fitted, "weights": weights})  # fmt: skip
        out[name] = Variant(name=name, share=int(spec["share"]), scorer=scorer)
    return out


def assign(user_id: str, variants: dict[str, Variant]) -> str:
    """The user's variant: a stable hash of the user id into the shares (sorted by name)."""
    names = sorted(n for n, v in variants.items() if v.share > 0)
    total = sum(variants[n].share for n in names)
    point = int.from_bytes(hashlib.sha256(user_id.encode("utf-8")).digest()[:8], "big") % total
    for n in names:
        point -= variants[n].share
        if point < 0:
            return n
    return names[-1]


def store_version(version: str, variant: str) -> str:
    """The key of a variant's radio lists in the store: its weights make other lists."""
    return version if variant == CONTROL else f"{version}~{variant}"
