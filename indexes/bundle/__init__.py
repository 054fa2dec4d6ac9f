"""The bundle format in one place: its names and manifest (`layout`), writing (`write`),
publishing (`publish`), reading (`read`) and the checks of a bundle (`verify`).

Every name other code imports from `indexes.bundle` is re-exported here.
"""

from __future__ import annotations

from indexes.bundle.errors import BundleError, ManifestError
from indexes.bundle.layout import (
    CURRENT,
    ENTITIES,
    FORMAT_VERSION,
    MANIFEST,
    SUPPORTED_FORMATS,
    Manifest,
)
from indexes.bundle.neighbours import Neighbours
from indexes.bundle.publish import (
    new_version,
    prune,
    publish,
    resolve_current,
    set_current,
    staging_dir,
)
from indexes.bundle.read import (
    AnnIndex,
    AnnObserver,
    Bundle,
    Entities,
    IdMap,
    Strings,
    Users,
    open_bundle,
    read_manifest,
    read_typed_manifest,
)
from indexes.bundle.verify import sha256_file, verify
from indexes.bundle.write import BundleWriter

__all__ = [
    "CURRENT",
    "ENTITIES",
    "FORMAT_VERSION",
    "MANIFEST",
    "SUPPORTED_FORMATS",
    "AnnIndex",
    "AnnObserver",
    "Bundle",
    "BundleError",
    "BundleWriter",
    "Entities",
    "IdMap",
    "Manifest",
    "ManifestError",
    "Neighbours",
    "Strings",
    "Users",
    "new_version",
    "open_bundle",
    "prune",
    "publish",
    "read_manifest",
    "read_typed_manifest",
    "resolve_current",
    "set_current",
    "sha256_file",
    "staging_dir",
    "verify",
]
