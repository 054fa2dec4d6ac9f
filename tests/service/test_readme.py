"""The README stays true to the code: every setting and every route is documented there."""

from __future__ import annotations

from pathlib import Path

from service.app import create_app
from service.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_in_the_readme() -> None:
    missing = [f"SEGUE_{n.upper()}" for n in Settings.model_fields
               if f"SEGUE_{n.upper()}" not in README]  # fmt: skip
    assert not missing


def test_every_route_has_a_curl_example() -> None:
    app = create_app(Settings())  # builds routes only: the lifespan does not run
    for route in app.routes:
        path = getattr(route, "path", "")
        if not path.startswith("/v1"):
            continue
        prefix = path.split("{")[0].rstrip("/")
        assert f"http://127.0.0.1:8000{prefix}" in README, path
