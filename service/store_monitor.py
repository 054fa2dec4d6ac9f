"""The store a worker uses, and whether it answers.

The store is opened in each worker's lifespan (after the fork). A background task pings it every
few seconds (`StoreMonitor.watch`): `/readyz` reports its state, and a store that was down is used
again as soon as it answers, without a restart. Every call a request makes goes through the
monitor, so the monitor alone decides that the store is down: a call that fails because the store
is down marks it down until the next successful ping, and requests never wait for a store known to
be down: they get `errors.NoStore` at once (503 with Retry-After).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from starlette.concurrency import run_in_threadpool

from indexes.progress import log
from service.errors import NoStore
from service.store.base import Store, StoreOptions, StoreUnavailable
from service.store.factory import open_store

T = TypeVar("T")

logger = logging.getLogger("segue")


@dataclass(frozen=True)
class StoreState:
    url: str
    ok: bool
    detail: str
    since: float  # time.time() of the last change


class StoreMonitor:
    """The store of one worker, its state, and every store call of its requests.

    `on_error()` is called for each store call that failed and each request refused because the
    store is known to be down (the segue_store_errors_total counter); `on_state(ok)` after each
    check and each failure that marks the store down (the segue_store_up gauge)."""

    def __init__(
        self,
        url: str,
        *,
        options: StoreOptions,
        retry_after_seconds: int = 5,
        on_error: Callable[[], object] = lambda: None,
        on_state: Callable[[bool], object] = lambda ok: None,
        apply_schema: bool = True,
    ) -> None:
        self.url = url
        self.options = options
        self.retry_after_seconds = retry_after_seconds
        self.on_error = on_error
        self.on_state = on_state
        self.apply_schema = apply_schema
        self._store: Store | None = None
        self._watched: Store | None = None  # the store, its failures reported to this monitor
        self._lock = threading.Lock()
        self.ever_ok = False
        self.state = StoreState(url=url, ok=False, detail="not checked yet", since=time.time())

    def store(self) -> Store:
        """The store, or StoreUnavailable at once if it is known to be down."""
        store = self._watched
        if store is None or not self.state.ok:
            raise StoreUnavailable(f"store {self.url} unavailable: {self.state.detail}")
        return store

    def optional(self) -> Store | None:
        """The store if it is up, None if it is down (for endpoints that can do without)."""
        return self._watched if self.state.ok else None

    async def run(self, call: Callable[[Store], T]) -> T:
        """`call(store)` on a worker thread, for a request that needs the store: NoStore at
        once when the store is known to be down, or when the call fails."""
        try:
            store = self.store()
        except StoreUnavailable as e:
            self.on_error()
            raise NoStore(str(e), retry_after=self.retry_after_seconds) from e
        try:
            return await run_in_threadpool(call, store)
        except StoreUnavailable as e:  # already counted and reported by the watched store
            raise NoStore(str(e), retry_after=self.retry_after_seconds) from e

    async def read(self, call: Callable[[Store], Awaitable[T]]) -> T:
        """`run` for a call that awaits the store on the event loop (`Store.get_async`)."""
        try:
            store = self.store()
        except StoreUnavailable as e:
            self.on_error()
            raise NoStore(str(e), retry_after=self.retry_after_seconds) from e
        try:
            return await call(store)
        except StoreUnavailable as e:  # already counted and reported by the watched store
            raise NoStore(str(e), retry_after=self.retry_after_seconds) from e

    def check(self) -> StoreState:
        """Opens the store if needed and pings it; records the state (never raises)."""
        with self._lock:
            try:
                if self._store is None:
                    self._store = open_store(
                        self.url, options=self.options, apply_schema=self.apply_schema
                    )
                    self._watched = cast(Store, _Watched(self._store, monitor=self))
                self._store.ping()
            except StoreUnavailable as e:
                self._set(ok=False, detail=str(e))
            else:
                self._set(ok=True, detail="ok")
                self.ever_ok = True
            return self.state

    async def watch(self, *, every: float) -> None:
        """Pings the store every `every` seconds, for ever: a store that was down is used again
        once it answers."""
        while True:
            try:
                await asyncio.to_thread(self.check)
            except Exception:  # never let the watcher die
                logger.exception("store check failed")
            await asyncio.sleep(every)

    def failed(self, error: StoreUnavailable) -> None:
        """A request saw the store fail: if the store is down (not one slow request), mark it
        down until the next successful check.

        No lock: `check` may hold it while connecting, and the state is one value, replaced
        whole."""
        if error.down:
            self._set(ok=False, detail=str(error))

    def _set(self, *, ok: bool, detail: str) -> None:
        if ok != self.state.ok or (not ok and detail != self.state.detail and self.state.ok):
            log(f"store {self.url}: {'ok' if ok else 'unavailable: ' + detail}")
        if ok != self.state.ok or detail != self.state.detail:
            self.state = StoreState(url=self.url, ok=ok, detail=detail, since=time.time())
        self.on_state(ok)

    def close(self) -> None:
        with self._lock:
            store, self._store, self._watched = self._store, None, None
        if store is not None:
            store.close()


class _Watched:
    """A store whose failed calls its monitor hears of (counted, and marking it down when the
    failure says the store is down), wherever the caller catches them."""

    def __init__(self, store: Store, *, monitor: StoreMonitor) -> None:
        self._store = store
        self._monitor = monitor

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if not callable(attr):
            return attr

        if inspect.iscoroutinefunction(attr):

            async def watched_async(*args: Any, **kwargs: Any) -> Any:
                try:
                    return await attr(*args, **kwargs)
                except StoreUnavailable as e:
                    self._failed(e)
                    raise

            return watched_async

        def watched(*args: Any, **kwargs: Any) -> Any:
            try:
                return attr(*args, **kwargs)
            except StoreUnavailable as e:
                self._failed(e)
                raise

        return watched

    def _failed(self, error: StoreUnavailable) -> None:
        self._monitor.on_error()
        self._monitor.failed(error)
