"""The app in this process (no server): list limits from its settings, checked and documented
as FastAPI does for fixed ones, and the errors the logic layer raises."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from indexes.pipeline import BuildResult
from service.app import create_app
from service.settings import Settings


@pytest.fixture(scope="module")
def settings(tiny_build: BuildResult, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    store = tmp_path_factory.mktemp("app") / "store.db"
    return Settings(bundles=tiny_build.path.parent, store=f"sqlite:///{store}",
                    swap_poll_seconds=0.2, store_check_seconds=0.2,
                    default_limit=7, max_limit=30, radio_size=40)  # fmt: skip


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        deadline = time.monotonic() + 60
        while c.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, c.get("/readyz").text
            time.sleep(0.05)
        yield c


def limit_schema(spec: dict[str, Any], path: str) -> dict[str, Any]:
    (parameter,) = [p for p in spec["paths"][path]["get"]["parameters"] if p["name"] == "limit"]
    assert parameter["in"] == "query" and parameter["required"] is False
    schema: dict[str, Any] = parameter["schema"]
    return schema


def test_the_openapi_documents_the_limits_of_the_settings(settings: Settings) -> None:
    spec = create_app(settings).openapi()
    for path, most, default in [
        ("/v1/tracks", 30, 7),
        ("/v1/artists", 30, 7),
        ("/v1/tracks/{track_id}/similar", 30, 7),
        ("/v1/users/{user_id}/recommendations", 30, 7),
        ("/v1/artists/{artist_id}/related", 30, 20),
        ("/v1/tracks/{track_id}/radio-neighbours", 40, 40),
        ("/v1/stations/{station_id}/tracks", 50, 10),
    ]:
        assert limit_schema(spec, path) == {"type": "integer", "maximum": most, "minimum": 1,
                                            "default": default, "title": "Limit"}, path  # fmt: skip


def test_limits_default_and_bound_by_the_settings(client: TestClient) -> None:
    assert len(client.get("/v1/tracks").json()["items"]) == 7
    assert len(client.get("/v1/tracks", params={"limit": 30}).json()["items"]) == 30
    t = client.get("/v1/tracks").json()["items"][0]["id"]
    radio = client.get(f"/v1/tracks/{t}/radio-neighbours")
    assert radio.status_code == 200 and 0 < len(radio.json()["items"]) <= 40
    r = client.get(f"/v1/tracks/{t}/radio-neighbours", params={"limit": 41})
    assert r.status_code == 422
    assert r.json()["detail"][0]["ctx"] == {"le": 40}


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("31", {"type": "less_than_equal", "loc": ["query", "limit"], "input": "31",
                "msg": "Input should be less than or equal to 30", "ctx": {"le": 30}}),
        ("0", {"type": "greater_than_equal", "loc": ["query", "limit"], "input": "0",
               "msg": "Input should be greater than or equal to 1", "ctx": {"ge": 1}}),
        ("ten", {"type": "int_parsing", "loc": ["query", "limit"], "input": "ten",
                 "msg": "Input should be a valid integer, unable to parse string as an integer"}),
    ],
)  # fmt: skip
def test_a_limit_out_of_bounds_is_fastapis_own_422(
    client: TestClient, value: str, error: dict[str, Any]
) -> None:
    for path in ("/v1/tracks", "/v1/artists", "/v1/users/u0003/recommendations"):
        r = client.get(path, params={"limit": value})
        assert r.status_code == 422 and r.json() == {"detail": [error]}, path


def test_an_unknown_model_is_one_422_from_the_logic_layer(client: TestClient) -> None:
    t = client.get("/v1/tracks").json()["items"][0]["id"]
    r = client.get(f"/v1/tracks/{t}/similar", params={"model": "nope"})
    assert r.status_code == 422
    (error,) = r.json()["detail"]
    assert error["loc"] == ["query", "model"] and error["type"] == "value_error"
    assert error["msg"].startswith("unknown model 'nope'; one of [") and "ensemble" in error["msg"]
    for model in ("ensemble", "als"):
        ok = client.get(f"/v1/tracks/{t}/similar", params={"model": model})
        assert ok.status_code == 200 and ok.json()["model"] == model


def test_a_station_that_does_not_exist_is_404_naming_it(client: TestClient) -> None:
    for method in ("GET", "DELETE"):
        r = client.request(method, "/v1/stations/nope")
        assert r.status_code == 404 and r.json() == {"detail": "station 'nope' not found"}


def test_without_a_bundle_every_endpoint_that_needs_one_is_503(tmp_path: Path) -> None:
    settings = Settings(bundles=tmp_path / "none", store=f"sqlite:///{tmp_path / 's.db'}")
    with TestClient(create_app(settings)) as c:
        r = c.get("/v1/tracks")
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert r.json()["detail"].startswith("not ready: ")
