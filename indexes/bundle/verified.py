"""Verify a bundle version once per host, before any worker maps it.

`verify_once` runs every check of `segue verify` (the sha256 of every file, the manifest's seal,
every node of every Annoy index) on a version the first time a process of this host asks for it,
and writes what it found to a marker file in a directory of the host (a pod's /tmp); the other
workers wait for it (a file lock) and then trust the marker instead of reading the bundle again.

A marker is keyed by the version's path and, for every file in it, its name, size, inode,
mtime and ctime: a file written after the verification (even in place, with its size kept)
changes its ctime, which no one can set back, so the marker no longer applies and the version
is verified again. With a signing key, the marker carries an HMAC under that key.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from indexes.bundle.errors import BundleError


@dataclass(frozen=True)
class Verdict:
    """What the verification of a version found: `error` None when it passed; `here` when this
    process verified it (rather than trusting another's marker)."""

    error: str | None
    here: bool


def default_marker_dir() -> Path:
    """Per host (per pod: its /tmp) and per user."""
    return Path(tempfile.gettempdir()) / f"segue-verified-{os.getuid()}"


def verify_once(
    directory: Path, *, checksums: bool, signing_key: bytes | None, marker_dir: Path
) -> Verdict:
    """The verdict on the bundle `directory`, from the marker this host wrote for it or, when
    there is none for its files as they are now, from verifying it (and writing the marker).
    `checksums` False: every check but the sha256 of the files."""
    directory = directory.resolve()
    marker_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with _locked(marker_dir / "verify.lock"):
        stamp = _stamp(directory, checksums=checksums)
        marker = marker_dir / f"{hashlib.sha256(stamp.encode()).hexdigest()[:40]}.json"
        found = _read(marker, stamp=stamp, key=signing_key)
        if found is not None:
            return Verdict(error=found or None, here=False)
        error = _verify(directory, checksums=checksums, signing_key=signing_key)
        _write(marker, stamp=stamp, error=error, key=signing_key)
        return Verdict(error=error, here=True)


def _verify(directory: Path, *, checksums: bool, signing_key: bytes | None) -> str | None:
    from indexes.bundle.read import open_bundle

    try:
        open_bundle(
            directory, verify_checksums=checksums, signing_key=signing_key, check_trees=True
        ).close()
    except (BundleError, OSError) as e:
        return str(e)
    return None


def _stamp(directory: Path, *, checksums: bool) -> str:
    """The identity of the version's files as they are now (and of what was checked)."""
    st = directory.stat()
    parts = [f"{directory}\0{st.st_dev}\0{st.st_ino}\0checksums={checksums}"]
    with os.scandir(directory) as entries:
        for e in sorted(entries, key=lambda e: e.name):
            s = e.stat(follow_symlinks=False)
            parts.append(
                f"{e.name}\0{s.st_size}\0{s.st_ino}\0{s.st_mtime_ns}\0{s.st_ctime_ns}\0{s.st_mode}"
            )
    return "\n".join(parts)


def _mac(stamp: str, error: str | None, key: bytes | None) -> str:
    if not key:
        return ""
    return hmac.new(key, json.dumps([stamp, error]).encode(), hashlib.sha256).hexdigest()


def _read(marker: Path, *, stamp: str, key: bytes | None) -> str | None:
    """ "" when the marker says the files passed, the error when they failed, None when there
    is no marker for these files (or it cannot be trusted)."""
    try:
        data = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("stamp") != stamp:
        return None
    error = data.get("error")
    if error is not None and not isinstance(error, str):
        return None
    if not hmac.compare_digest(str(data.get("mac", "")), _mac(stamp, error, key)):
        return None
    return error or ""


def _write(marker: Path, *, stamp: str, error: str | None, key: bytes | None) -> None:
    """Atomically: a reader sees the whole marker or none."""
    data = {"stamp": stamp, "error": error, "mac": _mac(stamp, error, key)}
    fd, tmp = tempfile.mkstemp(dir=marker.parent, prefix=".marker-")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
        os.replace(tmp, marker)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
