"""The store a worker uses, and whether it answers.

The store is opened in each worker's lifespan (after the fork). A background task pings it every
few seconds: `/readyz` reports its state, and a store that was down is used again as soon as it
answers, without a restart. Requests never wait for a store known to be down: they get
StoreUnavailable at once (503 with Retry-After).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from indexes.progress import log
from service.store.base import Store, StoreOptions, StoreUnavailable
from service.store.factory import open_store


@dataclass(frozen=True)
class StoreState:
    url: str
    ok: bool
    detail: str
    since: float  # time.time() of the last change


class StoreMonitor:
    def __init__(self, url: str, *, options: StoreOptions, apply_schema: bool = True) -> None:
        self.url = url
        self.options = options
        self.apply_schema = apply_schema
        self._store: Store | None = None
        self._lock = threading.Lock()
        self.ever_ok = False
        self.state = StoreState(url=url, ok=False, detail="not checked yet", since=time.time())

    def store(self) -> Store:
        """The store, or StoreUnavailable at once if it is known to be down."""
        store = self._store
        if store is None or not self.state.ok:
            raise StoreUnavailable(f"store {self.url} unavailable: {self.state.detail}")
        return store

    def optional(self) -> Store | None:
        """The store if it is up, None if it is down (for endpoints that can do without)."""
        return self._store if self.state.ok else None

    def check(self) -> StoreState:
        """Opens the store if needed and pings it; records the state (never raises)."""
        with self._lock:
            try:
                if self._store is None:
                    self._store = open_store(
                        self.url, options=self.options, apply_schema=self.apply_schema
                    )
                self._store.ping()
            except StoreUnavailable as e:
                self._set(ok=False, detail=str(e))
            else:
                self._set(ok=True, detail="ok")
                self.ever_ok = True
            return self.state

    def failed(self, error: StoreUnavailable) -> None:
        """A request saw the store fail: if the store is down (not one slow request), mark it
        down until the next successful check.

        No lock: this runs on the event loop, and `check` may hold the lock while connecting."""
        if error.down:
            self._set(ok=False, detail=str(error))

    def _set(self, *, ok: bool, detail: str) -> None:
        if ok != self.state.ok or (not ok and detail != self.state.detail and self.state.ok):
            log(f"store {self.url}: {'ok' if ok else 'unavailable: ' + detail}")
        if ok != self.state.ok or detail != self.state.detail:
            self.state = StoreState(url=self.url, ok=ok, detail=detail, since=time.time())

    def close(self) -> None:
        with self._lock:
            store, self._store = self._store, None
        if store is not None:
            store.close()
