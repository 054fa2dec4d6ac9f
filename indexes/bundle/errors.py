"""The one error of the bundle package."""

from __future__ import annotations


class BundleError(Exception):
    """A bundle is missing, corrupt, truncated or does not match its manifest."""


class ManifestError(BundleError):
    """A manifest's JSON does not have the shape of a manifest; the message names the key, not
    the file (`read.read_manifest` adds the path)."""
