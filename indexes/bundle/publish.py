"""Publishing: a staged bundle made durable, renamed into place and pointed at by `current`.

Publishing writes into a staging directory beside the bundles, fsyncs, renames it to
`<root>/<version>` and then atomically replaces the `current` symlink. A published file is never
written again: a reader that mmapped the old bundle keeps working while a new one is published.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

from indexes.bundle import layout
from indexes.bundle.errors import BundleError


def new_version(*, seed_text: str) -> str:
    """A sortable, unique bundle version: UTC time plus a short hash."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    digest = hashlib.sha256(f"{seed_text}{time.time_ns()}{os.getpid()}".encode()).hexdigest()[:8]
    return f"{stamp}-{digest}"


def staging_dir(root: Path, version: str) -> Path:
    return root / layout.staging_name(version)


def publish(
    *, staging: Path, root: Path, version: str, keep: int = 3, make_current: bool = True
) -> Path:
    """Makes a staged bundle durable and (by default) current; returns its final directory.

    fsync every file and the directory and rename staging -> <root>/<version>; then
    `set_current`. With make_current=False the version waits beside `current` (e.g. to be
    precomputed into the store first) until `set_current` publishes it.
    """
    final = root / version
    if final.exists():
        raise BundleError(f"{final}: a bundle with this version already exists; not overwriting it")
    for path in staging.iterdir():
        fsync_file(path)
    fsync_dir(staging)
    os.rename(staging, final)
    fsync_dir(root)
    if make_current:
        set_current(root=root, version=version, keep=keep)
    return final


def set_current(*, root: Path, version: str, keep: int = 3) -> Path:
    """Points `<root>/current` at a stored version: a temporary symlink renamed over `current`
    (atomic on POSIX). Old versions beyond `keep` are removed; unlinking a file that another
    process has mmapped is safe (the inode lives on until unmapped), overwriting or truncating
    it would not be, and is never done."""
    final = root / version
    if not layout.is_version_name(version) or not _is_bundle(final):
        raise BundleError(f"{final}: no bundle with version {version!r} here")
    tmp_link = root / layout.current_link_name(version)
    if tmp_link.is_symlink() or tmp_link.exists():
        tmp_link.unlink()
    os.symlink(version, tmp_link)
    os.replace(tmp_link, root / layout.CURRENT)
    fsync_dir(root)
    prune(root, keep=keep)
    return final


def prune(root: Path, *, keep: int) -> list[str]:
    """Removes all but the newest `keep` published versions (never the current one)."""
    current = resolve_current(root).name if (root / layout.CURRENT).exists() else None
    versions = sorted(
        p.name for p in root.iterdir() if p.is_dir() and layout.is_version_name(p.name)
    )
    versions = [v for v in versions if _is_bundle(root / v)]
    removed = []
    for v in versions[: max(0, len(versions) - keep)]:
        if v != current:
            shutil.rmtree(root / v)
            removed.append(v)
    return removed


def resolve_current(root: Path) -> Path:
    """The bundle directory that `<root>/current` points at (or `root` itself if it is a bundle)."""
    if _is_bundle(root):
        return root
    link = root / layout.CURRENT
    if not link.exists():
        raise BundleError(
            f"{root}: no bundle here (neither {layout.MANIFEST} nor a '{layout.CURRENT}' link)"
        )
    return link.resolve()


def _is_bundle(directory: Path) -> bool:
    return (directory / layout.MANIFEST).is_file()


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
