"""The README stays true to the code: every setting and every route is documented there."""

from __future__ import annotations

import re
from pathlib import Path

from service.app import create_app
from service.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_in_the_readme() -> None:
    missing = [f"SEGUE_{n.upper()}" for n in Settings.model_fields
               if f"SEGUE_{n.upper()}" not in README]  # fmt: skip
    assert not missing


def test_every_route_has_a_curl_example() -> None:
    """Each /v1 path of the OpenAPI contract, whole, with something in place of each {param}."""
    app = create_app(Settings())  # builds routes only: the lifespan does not run
    paths = [p for p in app.openapi()["paths"] if p.startswith("/v1")]
    assert len(paths) >= 8
    missing = []
    for path in paths:
        parts = re.split(r"\{[^}]+\}", path)
        pattern = r"[^/\s'\"?]+".join(re.escape(part) for part in parts)
        if not re.search(r"http://127\.0\.0\.1:8000" + pattern + r"(?=[\s'\"?]|$)", README):
            missing.append(path)
    assert not missing
