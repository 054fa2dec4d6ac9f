"""The manifest's seal: what covers the manifest's own fields (its ensemble weights, variants,
index entries and the sha256 of every file), which no entry of `files` can.

The build writes `"seal": {"sha256": ..., "hmac_sha256": ...}` into manifest.json: the sha256
of the manifest's canonical JSON without the seal (keys sorted, no spaces), and, when a signing
key is configured (SEGUE_BUNDLE_SIGNING_KEY), the HMAC-SHA256 of the same bytes under that key.
A reader recomputes both: an edited field (a weight changed by hand, a file's sha256 rewritten)
no longer matches the sha256, and without the key nobody can make a matching HMAC, so a bundle
that was not built with the key is refused wherever the key is configured.

Bundles written before the seal existed have none: they are read as before where no key is
configured, and refused where one is.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

from indexes.bundle import layout
from indexes.bundle.errors import BundleError

SEAL = "seal"


def canonical(manifest: dict[str, Any]) -> bytes:
    """The bytes the seal covers: every key but the seal, sorted, compact."""
    body = {k: v for k, v in manifest.items() if k != SEAL}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def seal(manifest: dict[str, Any], *, key: bytes | None) -> dict[str, Any]:
    """The manifest with its seal last (replacing any it had)."""
    data = canonical(manifest)
    out: dict[str, Any] = {"sha256": hashlib.sha256(data).hexdigest()}
    if key:
        out["hmac_sha256"] = hmac.new(key, data, hashlib.sha256).hexdigest()
    return {**{k: v for k, v in manifest.items() if k != SEAL}, SEAL: out}


def check_seal(directory: Path, manifest: dict[str, Any], *, key: bytes | None) -> None:
    """BundleError unless the manifest's seal matches its fields (and, with a key, is signed
    with it)."""
    path = directory / layout.MANIFEST
    found = manifest.get(SEAL)
    if found is None:
        if key:
            raise BundleError(
                f"{path}: not signed, and a signing key is configured: not a bundle built with it"
            )
        return
    if not isinstance(found, dict) or not isinstance(found.get("sha256"), str):
        raise BundleError(f"{path}: malformed seal")
    data = canonical(manifest)
    if not hmac.compare_digest(found["sha256"], hashlib.sha256(data).hexdigest()):
        raise BundleError(
            f"{path}: its fields do not match its seal (sha256): edited or corrupt after the build"
        )
    if key:
        mac = found.get("hmac_sha256")
        if mac is None:
            raise BundleError(
                f"{path}: not signed, and a signing key is configured: not a bundle built with it"
            )
        expected = hmac.new(key, data, hashlib.sha256).hexdigest()
        if not isinstance(mac, str) or not hmac.compare_digest(mac, expected):
            raise BundleError(
                f"{path}: bad signature (hmac_sha256): not signed with the configured key"
            )
