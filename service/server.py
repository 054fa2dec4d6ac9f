"""`segue serve`'s process model: a gunicorn arbiter that forks N uvicorn workers.

The arbiter imports the service's modules (FastAPI, pydantic, numpy, Annoy: about a second of
CPU) once, before it forks, so a worker starts with them in place and is ready as soon as its
lifespan has opened the bundle. Workers spawned as fresh interpreters (uvicorn's own
`--workers`) each import everything again, which on 2 cores with 4 workers took 2–2.6 s.

Each worker builds its own app (`app_from_env`, after the fork) and runs its lifespan: the bundle
mmap, the store session and the watchers are per worker, as before. The arbiter restarts a
worker that dies and marks its Prometheus files dead.
"""

from __future__ import annotations

import gc
import os
from typing import Any

from gunicorn.app.base import BaseApplication

WORKER_CLASS = "uvicorn_worker.UvicornWorker"
# gunicorn 27 (pinned) opens a control socket in $HOME/.gunicorn or $XDG_RUNTIME_DIR: one per user, so
# two servers on one machine would share it, and $HOME may not be writable in the image
_OPTIONAL = {"control_socket_disable"}


class _Arbiter(BaseApplication):  # gunicorn has no type hints (Any)
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in _OPTIONAL and key not in self.cfg.settings:
                continue  # a setting this gunicorn version does not have
            self.cfg.set(key, value)

    def load(self) -> Any:
        from service.app import app_from_env

        return app_from_env()  # in each worker, after the fork


def _child_exit(server: Any, worker: Any) -> None:
    """A worker is gone (also when killed): its live-gauge samples must not count any more."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid, path=path)


def run(*, host: str, port: int, workers: int, graceful_timeout: int = 30) -> None:
    """Serves until SIGTERM/SIGINT (then stops the workers gracefully)."""
    import service.app  # noqa: F401  # the imports every worker needs, done once before the fork

    # the imported objects go to the permanent generation: a worker's collections skip them and
    # do not write to (copy) the pages it shares with the arbiter
    gc.collect()
    gc.freeze()

    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    _Arbiter(
        {
            "bind": [bind],
            "workers": workers,
            "worker_class": WORKER_CLASS,
            "preload_app": False,  # the app (and its lifespan) is made in each worker
            "proc_name": "segue",
            "loglevel": "info",
            "accesslog": None,
            "keepalive": 5,  # seconds an idle keep-alive connection stays open (uvicorn's default)
            "timeout": 60,  # a worker that does not check in for this long is restarted
            "graceful_timeout": graceful_timeout,
            "child_exit": _child_exit,
            "control_socket_disable": True,
        }
    ).run()
