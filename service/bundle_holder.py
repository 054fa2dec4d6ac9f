"""The bundle a worker serves, and hot swap to a new one without failing a request.

Each request holds a reference to the bundle it started with (`BundleHolder.use`). When
`current` points at a new version, a background task (`BundleHolder.watch`) opens it, makes it
the one new requests get, and closes the old one once its last in-flight request has finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from indexes.bundle import Bundle, BundleError, open_bundle, resolve_current
from indexes.bundle.read import AnnObserver
from indexes.bundle.verified import Verdict, default_marker_dir, verify_once
from indexes.bundle.verify import verify
from indexes.ensemble import Scorer
from indexes.progress import log
from service.errors import NoBundle
from service.experiments import Variant, make_variants

logger = logging.getLogger("segue")


@dataclass
class LoadedBundle:
    """An open bundle with its scorers, and how many requests are using it."""

    bundle: Bundle
    scorers: dict[str, Scorer]
    search_k: int | None = None
    variants: dict[str, Variant] = field(default_factory=dict)
    refs: int = 0
    retired: bool = False
    closed: bool = field(default=False)

    @property
    def version(self) -> str:
        return self.bundle.version


def load(
    path: Path,
    *,
    verify_checksums: bool,
    candidates_per_source: int,
    search_k: int | None,
    signing_key: bytes | None = None,
    on_ann_query: AnnObserver | None = None,
) -> LoadedBundle:
    bundle = open_bundle(
        path, verify_checksums=verify_checksums, signing_key=signing_key, on_ann_query=on_ann_query
    )
    try:
        if search_k is not None:
            for ann in bundle.indexes.values():
                ann.search_k = search_k
        scorers = {
            entity: Scorer(bundle, entity=entity, candidates_per_source=candidates_per_source)
            for entity in ("tracks", "artists")
        }
        try:
            variants = make_variants(
                bundle, control=scorers["tracks"], candidates_per_source=candidates_per_source
            )
        except ValueError as e:
            raise BundleError(f"{path}: {e}") from e
    except Exception:
        bundle.close()
        raise
    return LoadedBundle(bundle=bundle, scorers=scorers, search_k=search_k, variants=variants)


class BundleHolder:
    """Holds the current LoadedBundle of a worker; thread-safe.

    A version is mapped only once it has passed `verify_once` (every check of `segue verify`,
    done by one process of the host, the others trusting its marker): whatever bytes a published
    bundle holds, a worker refuses it and keeps the one it serves."""

    def __init__(
        self,
        root: Path,
        *,
        verify_checksums: bool,
        candidates_per_source: int,
        search_k: int | None,
        signing_key: bytes | None = None,
        marker_dir: Path | None = None,
        on_ann_query: AnnObserver | None = None,
    ) -> None:
        self.root = root
        self.on_ann_query = on_ann_query
        self.verify_checksums = verify_checksums
        self.signing_key = signing_key
        self.marker_dir = marker_dir if marker_dir is not None else default_marker_dir()
        # bundles refused: by this process's own verification or open (a verdict read from
        # another process's marker is that process's count)
        self.refusals = 0
        self.candidates_per_source = candidates_per_source
        self.search_k = search_k
        self._lock = threading.Lock()
        self._current: LoadedBundle | None = None
        self.last_error: str | None = None

    @property
    def current(self) -> LoadedBundle | None:
        return self._current

    def _open(self, path: Path) -> LoadedBundle:
        return load(
            path,
            verify_checksums=False,  # verify_once did, for every process of the host
            signing_key=self.signing_key,
            candidates_per_source=self.candidates_per_source,
            search_k=self.search_k,
            on_ann_query=self.on_ann_query,
        )

    def refresh(self) -> bool:
        """Opens the bundle `current` points at if it is not the one served; True if swapped.

        A bundle that fails to open is refused (the message is logged and kept in `last_error`)
        and the worker goes on serving the one it has."""
        try:
            target = resolve_current(self.root)
        except BundleError as e:
            self._refused(str(e))
            return False
        served = self._current
        if served is not None and served.bundle.path == target:
            return False
        try:
            verdict = verify_once(
                target, checksums=self.verify_checksums, signing_key=self.signing_key,
                marker_dir=self.marker_dir,
            )  # fmt: skip
        except OSError as e:  # the marker directory: verify here, as if no other process could
            logger.warning("bundle verification marker unusable (%s): verifying here", e)
            verdict = Verdict(error=None, here=True)
            try:
                verify(target, signing_key=self.signing_key).close()
            except BundleError as e2:
                verdict = Verdict(error=str(e2), here=True)
        if verdict.error is not None:
            self._refused(verdict.error, count=verdict.here)
            return False
        try:
            fresh = self._open(target)
        except BundleError as e:
            self._refused(str(e))
            return False
        with self._lock:
            old, self._current = self._current, fresh
            self.last_error = None
            if old is not None:
                old.retired = True
                self._close_if_idle(old)
        _release_freed_memory()
        log(
            f"serving bundle {fresh.version} (pid {os.getpid()})"
            + (f" (was {old.version})" if old else "")
        )
        return True

    async def watch(
        self,
        *,
        every: float,
        on_swap: Callable[[LoadedBundle, str | None], None],
        on_refused: Callable[[], object],
    ) -> None:
        """Loads the bundle, then follows `current` every `every` seconds, for ever: hot swap
        without a restart. `on_swap(new, previous version)` after each swap, `on_refused()` for
        each bundle this process refused (`refusals`)."""
        while True:
            previous = self._current.version if self._current else None
            refused = self.refusals
            try:
                swapped = await asyncio.to_thread(self.refresh)
            except Exception:  # never let the watcher die: log and try again later
                logger.exception("bundle refresh failed")
                swapped = False
            if swapped and self._current is not None:
                on_swap(self._current, previous)
            for _ in range(self.refusals - refused):
                on_refused()
            await asyncio.sleep(every)

    def _refused(self, message: str, *, count: bool = True) -> None:
        """Logs a refusal (once per message) and counts it when `count` and it is new."""
        if message != self.last_error:
            log(f"bundle refused (pid {os.getpid()}): {message}")
            if count:
                self.refusals += 1
        self.last_error = message

    @contextmanager
    def use(self) -> Iterator[LoadedBundle]:
        """The bundle for one request; it stays open until the request is done."""
        with self._lock:
            loaded = self._current
            if loaded is None:
                raise NoBundle(self.last_error or f"no bundle loaded yet from {self.root}")
            loaded.refs += 1
        try:
            yield loaded
        finally:
            with self._lock:
                loaded.refs -= 1
                self._close_if_idle(loaded)

    def _close_if_idle(self, loaded: LoadedBundle) -> None:
        if loaded.retired and loaded.refs == 0 and not loaded.closed:
            loaded.closed = True
            loaded.bundle.close()

    def close(self) -> None:
        with self._lock:
            if self._current is not None:
                self._current.retired = True
                self._close_if_idle(self._current)
                self._current = None


def _release_freed_memory() -> None:
    """Gives the temporaries of a bundle load back to the OS (glibc keeps them otherwise,
    and they would count as private memory in every worker)."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)
