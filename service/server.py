"""`segue serve`'s process model: a gunicorn arbiter that forks N uvicorn workers.

The arbiter imports the service's modules (FastAPI, pydantic, numpy, Annoy) once, before it forks,
so a worker starts with them in place and is ready as soon as its lifespan has opened the bundle.
Workers spawned as fresh interpreters (uvicorn's own `--workers`) each import everything again,
which makes each of them slower to start (loadtest/README.md, bench_memory.py).

Each worker builds its own app from the arbiter's `Settings` after the fork: a forked worker has
the arbiter's objects, so the settings `segue serve` resolved (flags over SEGUE_* variables) reach
every worker, a replacement for a dead one included, as they are, through no environment variable
or file. The bundle mmap, the store session and the watchers are per worker. The arbiter restarts
a worker that dies and marks its Prometheus files dead.
"""

from __future__ import annotations

import gc
import os
from functools import partial
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication

from service.settings import Settings

WORKER_CLASS = "uvicorn_worker.UvicornWorker"
# gunicorn 27 (pinned) opens a control socket in $HOME/.gunicorn or $XDG_RUNTIME_DIR: one per user, so
# two servers on one machine would share it, and $HOME may not be writable in the image
_OPTIONAL = {"control_socket_disable"}


class _Arbiter(BaseApplication):  # gunicorn has no type hints (Any)
    def __init__(self, options: dict[str, Any], *, settings: Settings) -> None:
        self.options = options
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in _OPTIONAL and key not in self.cfg.settings:
                continue  # a setting this gunicorn version does not have
            self.cfg.set(key, value)

    def load(self) -> Any:
        """The worker's app: called in each worker, after the fork."""
        from service.app import create_app

        return create_app(self.settings)


def _child_exit(server: Any, worker: Any, *, metrics_dir: Path) -> None:
    """A worker is gone (also when killed): its live-gauge samples must not count any more."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, path=str(metrics_dir))


def options(settings: Settings, *, graceful_timeout: int = 30) -> dict[str, Any]:
    """gunicorn's settings for `settings`."""
    host, port = settings.host, settings.port
    opts: dict[str, Any] = {
        "bind": [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"],
        "workers": settings.workers,
        "worker_class": WORKER_CLASS,
        "preload_app": False,  # the app (and its lifespan) is made in each worker
        "proc_name": "segue",
        "loglevel": "info",
        "accesslog": None,
        "keepalive": 5,  # seconds an idle keep-alive connection stays open (uvicorn's default)
        "timeout": 60,  # a worker that does not check in for this long is restarted
        "graceful_timeout": graceful_timeout,
        "control_socket_disable": True,
    }
    if settings.metrics_dir is not None:
        opts["child_exit"] = partial(_child_exit, metrics_dir=settings.metrics_dir)
    return opts


def run(settings: Settings, *, graceful_timeout: int = 30) -> None:
    """Serves until SIGTERM/SIGINT (then stops the workers gracefully)."""
    if settings.metrics_dir is not None:
        # prometheus_client chooses its multiprocess mode from this variable when it is first
        # imported: in the arbiter too (marking dead workers), before the next worker is forked
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(settings.metrics_dir)
    import service.app  # noqa: F401  # the imports every worker needs, done once before the fork

    # the imported objects go to the permanent generation: a worker's collections skip them and
    # do not write to (copy) the pages it shares with the arbiter
    gc.collect()
    gc.freeze()
    _Arbiter(options(settings, graceful_timeout=graceful_timeout), settings=settings).run()
