"""Settings: the one source of defaults, the SEGUE_* variables, bad values, and how `segue serve`
hands the settings it resolved (flags over variables) to its workers."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from indexes.pipeline import BuildResult
from service import cli, server
from service.radio import Rules
from service.settings import (
    PrecomputeConfig,
    Settings,
    StationConfig,
    StoreOptions,
    describe_error,
)
from tests.service.conftest import start_server, stop_server, wait_ready


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("SEGUE_"):
            monkeypatch.delenv(name)
    yield


# -- defaults ---------------------------------------------------------------------------------


def test_with_no_environment_the_settings_are_their_defaults() -> None:
    s = Settings()
    assert s == Settings.defaults()
    assert (s.port, s.workers, s.radio_size, s.radio_artist_cap, s.store) == (
        8000, 1, 250, 10, "sqlite:///var/segue.db",
    )  # fmt: skip


def test_the_config_objects_take_every_value_from_settings() -> None:
    """None of them has a default of its own (so a default is changed in one place, Settings):
    every field is required, and the builders of Settings pass them all."""
    for config in (StoreOptions, StationConfig, PrecomputeConfig, Rules):
        fields = dataclasses.fields(config)
        assert all(
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            for f in fields
        ), config.__name__
        with pytest.raises(TypeError):
            config()


def test_the_builders_follow_the_settings() -> None:
    s = Settings(
        radio_size=120, radio_artist_cap=4, radio_candidates_per_source=80, radio_artist_gap=5,
        candidates_per_source=30, search_k=900, store_timeout_seconds=0.5,
        station_ttl_seconds=60, cassandra_password="secret",
        cassandra_replication='{"class": "NetworkTopologyStrategy", "dc1": 3}',
    )  # fmt: skip
    station = s.station_config()
    assert (station.radio_size, station.radio_artist_cap, station.per_source) == (120, 4, 80)
    assert station.rules == s.rules() and s.rules().artist_gap == 5
    run = s.precompute_config(processes=2, chunk_size=10, max_chunks=1)
    assert (run.radio_size, run.radio_artist_cap, run.radio_candidates_per_source) == (120, 4, 80)
    assert (run.candidates_per_source, run.search_k, run.processes, run.chunk_size) == (
        30,
        900,
        2,
        10,
    )
    options = s.store_options()
    assert (options.timeout_seconds, options.station_ttl_seconds) == (0.5, 60)
    assert options.password == "secret"
    assert options.replication == (("class", "NetworkTopologyStrategy"), ("dc1", "3"))


# -- the environment --------------------------------------------------------------------------


def test_every_setting_is_read_from_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGUE_PORT", "9100")
    monkeypatch.setenv("SEGUE_BUNDLES", "/srv/bundles")
    monkeypatch.setenv("SEGUE_VERIFY_CHECKSUMS", "true")
    monkeypatch.setenv("SEGUE_RADIO_ARTIST_GAP", "0")
    monkeypatch.setenv("SEGUE_CASSANDRA_CONSISTENCY", "local_one")
    monkeypatch.setenv("SEGUE_STORE", "cassandra://a,b:9142/radio")
    s = Settings()
    assert (s.port, s.bundles, s.verify_checksums) == (9100, Path("/srv/bundles"), True)
    assert s.rules().artist_gap == 0
    assert s.store_options().consistency == "LOCAL_ONE"  # normalised
    assert s.store == "cassandra://a,b:9142/radio"
    assert Settings.defaults().port == 8000  # the declared defaults ignore the environment


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"SEGUE_PORT": "abc"}, "SEGUE_PORT='abc': Input should be a valid integer"),
        ({"SEGUE_PORT": "0"}, "SEGUE_PORT='0': Input should be greater than or equal to 1"),
        ({"SEGUE_WORKERS": "65"}, "SEGUE_WORKERS='65': Input should be less than or equal to 64"),
        ({"SEGUE_STORE": "mysql://db"}, "SEGUE_STORE='mysql://db': Value error, bad store URL"),
        ({"SEGUE_CASSANDRA_CONSISTENCY": "MOST"}, "unknown consistency level 'MOST'"),
        ({"SEGUE_CASSANDRA_REPLICATION": "{nope"}, "SEGUE_CASSANDRA_REPLICATION='{nope': Value error, not JSON"),
        ({"SEGUE_CASSANDRA_REPLICATION": '{"dc1": 3}'}, 'a JSON object with a "class"'),
        ({"SEGUE_DEFAULT_LIMIT": "200"}, "SEGUE_DEFAULT_LIMIT (200) must not exceed SEGUE_MAX_LIMIT (100)"),
        ({"SEGUE_RADIO_SIZE": "0", "SEGUE_SWAP_POLL_SECONDS": "-1"}, "SEGUE_RADIO_SIZE='0'"),
    ],
)  # fmt: skip
def test_a_bad_value_is_refused_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], message: str
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as e:
        Settings()
    described = describe_error(e.value)
    assert described.startswith("bad setting: ") and message in described
    assert all(name in described for name in variables)  # every bad one is named


def test_a_command_with_a_bad_setting_stops_before_it_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SEGUE_PORT", "80000")
    assert cli.main(["serve"]) == 2
    assert "segue serve: bad setting: SEGUE_PORT='80000'" in capsys.readouterr().err
    monkeypatch.delenv("SEGUE_PORT")
    assert cli.main(["serve", "--workers", "0"]) == 2  # a bad option: the same check
    assert "SEGUE_WORKERS=0: Input should be greater than or equal to 1" in capsys.readouterr().err
    assert cli.main(["precompute", "--store", "mysql://db"]) == 2
    assert "bad store URL" in capsys.readouterr().err


# -- from `segue serve` to its workers --------------------------------------------------------


def test_an_option_wins_over_its_variable_and_nothing_is_written_to_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SEGUE_PORT", "9100")
    monkeypatch.setenv("SEGUE_HOST", "0.0.0.0")
    monkeypatch.setenv("SEGUE_DEFAULT_LIMIT", "3")
    before = dict(os.environ)
    assert cli.parser().parse_args(["serve"]).port is None  # no default of the option's own
    args = cli.parser().parse_args(["serve", "--port", "9200", "--bundles", "/b"])
    s = cli._settings(args, "serve", ("bundles", "workers", "host", "port"))
    assert s is not None
    assert (s.port, s.bundles) == (9200, Path("/b"))  # the options
    assert (s.host, s.default_limit, s.workers) == ("0.0.0.0", 3, 1)  # variables, defaults
    assert dict(os.environ) == before


def test_each_worker_builds_its_app_from_the_arbiters_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The app is made in the worker (after the fork) from the very Settings `run` was given."""
    made: list[Settings] = []

    def create_app(settings: Settings) -> Any:
        made.append(settings)
        return "app"

    monkeypatch.setattr("service.app.create_app", create_app)
    s = Settings(host="::1", port=9300, workers=3, metrics_dir=tmp_path)
    options = server.options(s, graceful_timeout=5)
    assert (options["bind"], options["workers"], options["graceful_timeout"]) == (
        ["[::1]:9300"],
        3,
        5,
    )
    assert options["child_exit"].keywords == {"metrics_dir": tmp_path}
    arbiter = server._Arbiter(options, settings=s)
    assert arbiter.cfg.workers == 3 and arbiter.cfg.preload_app is False
    assert arbiter.load() == "app"
    assert len(made) == 1 and made[0] is s  # these settings, not the environment read again


@pytest.mark.slow
@pytest.mark.slow
def test_a_served_worker_has_the_options_and_the_variables(
    served_build: BuildResult, tmp_path: Path
) -> None:
    """A real `segue serve`: --bundles and --port win over SEGUE_BUNDLES and SEGUE_PORT, the
    workers see the other SEGUE_* variables (a default limit of 3) and the metrics directory."""
    env = {
        "SEGUE_BUNDLES": str(tmp_path / "nowhere"),
        "SEGUE_PORT": "1",
        "SEGUE_DEFAULT_LIMIT": "3",
    }
    s = start_server(root=served_build.path.parent, tmp=tmp_path, workers=2, env=env)
    try:
        wait_ready(s)  # on the bundle of --bundles, at the port of --port
        for _ in range(10):  # fresh connections: both workers
            r = httpx.get(f"{s.url}/v1/tracks", timeout=10)
            assert r.status_code == 200 and len(r.json()["items"]) == 3
        assert any(s.metrics_dir.glob("*.db"))  # the workers write their samples there
    finally:
        stop_server(s)
