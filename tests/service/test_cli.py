from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.cli import main


@pytest.mark.slow
def test_build_verify_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bundles"
    args = ["--dims", "8", "--trees", "4", "--search-k", "100"]
    assert main(["build", "--dataset", "synthetic:300", "--out", str(out), *args]) == 0
    printed = capsys.readouterr().out
    assert "synthetic:300" in printed and "ensemble weights" in printed
    assert (out / "current" / "manifest.json").exists()
    assert main(["verify", str(out)]) == 0
    assert main(["summary", str(out)]) == 0
    assert "als" in capsys.readouterr().out


@pytest.mark.slow
def test_a_signed_build_is_verified_with_its_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "bundles"
    args = ["--dims", "8", "--trees", "4", "--search-k", "100"]
    monkeypatch.setenv("SEGUE_BUNDLE_SIGNING_KEY", "build-key")
    assert main(["build", "--dataset", "synthetic:300", "--out", str(out), *args]) == 0
    seal = json.loads((out / "current" / "manifest.json").read_text())["seal"]
    assert set(seal) == {"sha256", "hmac_sha256"}
    capsys.readouterr()
    assert main(["verify", str(out)]) == 0
    assert "(signed with the configured key)" in capsys.readouterr().out
    monkeypatch.setenv("SEGUE_BUNDLE_SIGNING_KEY", "another-key")  # not the one it was built with
    assert main(["verify", str(out)]) == 1
    assert "manifest.json: bad signature" in capsys.readouterr().err
    monkeypatch.delenv("SEGUE_BUNDLE_SIGNING_KEY")
    assert main(["verify", str(out)]) == 0  # no key here: its sha256 seal is checked


def test_build_rejects_bad_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "--dataset", "mp3:/nowhere", "--out", str(tmp_path)]) == 2
    assert "unknown kind 'mp3'" in capsys.readouterr().err
    assert main(["build", "--dataset", "plays:/nowhere.csv", "--out", str(tmp_path)]) == 2
    assert "/nowhere.csv does not exist" in capsys.readouterr().err
    assert main(["build", "--dataset", "synthetic:lots", "--out", str(tmp_path)]) == 2


@pytest.mark.slow
def test_evaluate_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "eval.json"
    args = ["--dims", "8", "--trees", "4", "--search-k", "100", "--json", str(target)]
    assert main(["evaluate", "--dataset", "synthetic:400", "--split", "users", *args]) == 0
    table = capsys.readouterr().out
    assert "recall@20" in table and "ensemble" in table
    results = json.loads(target.read_text())
    assert results["split"].startswith("users split at random")
    assert set(results["entities"]["tracks"]["sources"]) == {
        "als", "word2vec", "content", "cooc", "cooc_count", "trans", "trans_recent",
        "popularity", "recent_7d", "recent_28d", "recent_90d", "recent_365d", "ensemble",
        "baseline: popularity", "baseline: co-occurrence counts",
    }  # fmt: skip


@pytest.mark.slow
def test_evaluate_on_a_time_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Synthetic plays have times, so evaluate chooses the time split by itself."""
    target = tmp_path / "eval.json"
    args = ["--dims", "8", "--trees", "4", "--search-k", "100", "--json", str(target)]
    assert main(["evaluate", "--dataset", "synthetic:400", "--test-weeks", "2", *args]) == 0
    table = capsys.readouterr().out
    assert "HR@10" in table and "radio against the best baseline" in table
    results = json.loads(target.read_text())
    assert results["split"]["kind"] == "time" and "radio" in results["lists"]
    assert main(["evaluate", "--dataset", "synthetic:400", "--test-from", "2020-01-01", *args]) == 2
    assert "outside the data" in capsys.readouterr().err
    assert main(["evaluate", "--dataset", "synthetic:400", "--test-from", "soon", *args]) == 2
    assert "not a date" in capsys.readouterr().err


@pytest.mark.slow
def test_build_without_current_then_precompute_then_publish(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The pipeline CronJob's order: a new version is precomputed before it goes live."""
    out = tmp_path / "bundles"
    args = ["--dims", "8", "--trees", "4", "--search-k", "100"]
    assert main(["build", "--dataset", "synthetic:300", "--out", str(out), *args]) == 0
    live = (out / "current").resolve().name
    version_file = tmp_path / "version"
    assert main(["build", "--dataset", "synthetic:300", "--seed", "7", "--out", str(out),
                 "--no-current", "--version-file", str(version_file), *args]) == 0  # fmt: skip
    new = version_file.read_text().strip()
    assert new != live and (out / new / "manifest.json").exists()
    assert (out / "current").resolve().name == live  # not live yet
    assert f"segue publish --bundles {out} {new}" in capsys.readouterr().out

    store = f"sqlite:///{tmp_path / 'store.db'}"
    assert main(["precompute", "--bundles", str(out / new), "--store", store,
                 "--processes", "1"]) == 0  # fmt: skip
    assert new in capsys.readouterr().out

    assert main(["publish", "--bundles", str(out), new]) == 0
    assert (out / "current").resolve().name == new
    assert main(["publish", "--bundles", str(out), live]) == 0  # a roll back
    assert (out / "current").resolve().name == live

    assert main(["publish", "--bundles", str(out), "nope"]) == 1
    assert "nope" in capsys.readouterr().err
    assert (out / "current").resolve().name == live


def test_build_option_defaults_are_the_build_config_defaults() -> None:
    """`segue build`/`evaluate` take their defaults from BuildConfig (and the plays-at loader):
    with no option the build is BuildConfig's, and each option reaches its field."""
    import argparse
    import dataclasses
    import inspect

    from indexes.datasets.plays_at import load_plays_at
    from indexes.pipeline import BuildConfig
    from service.cli import BUILD_FLAGS, _build_options, _config

    parser = argparse.ArgumentParser()
    _build_options(parser)
    args = parser.parse_args([])
    assert _config(args) == BuildConfig()
    gap = inspect.signature(load_plays_at).parameters["session_gap_minutes"].default
    assert args.session_gap_minutes == gap
    assert "(default 32)" in " ".join(parser.format_help().split())  # the real default shown

    given = {"seed": 3, "dims": 9, "n_trees": 11, "search_k": 77, "max_search_k": 99,
             "validation_days": 5.0, "threads": 1}  # fmt: skip
    assert set(given) == set(BUILD_FLAGS)
    argv = [str(x) for name, value in given.items() for x in (BUILD_FLAGS[name], value)]
    config = _config(parser.parse_args(argv))
    assert config == dataclasses.replace(BuildConfig(), **given)
    with pytest.raises(SystemExit, match="--threads must be at least 1"):
        _config(parser.parse_args(["--threads", "0"]))


def test_token_mints_with_the_first_key_and_serve_refuses_missing_keys(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from service.auth import Verifier, parse_secrets

    secrets = f"k2:{'b' * 40} k1:{'a' * 40}"
    monkeypatch.setenv("SEGUE_AUTH_SECRETS", secrets)
    assert main(["token", "--user", "u0012", "--scope", "catalog:read listen", "--ttl", "60"]) == 0
    raw = capsys.readouterr().out.strip()
    v = Verifier(parse_secrets(secrets, source="t"), audience="segue", issuer="segue",
                 leeway_seconds=0)  # fmt: skip
    caller = v.verify(raw)
    assert caller.subject == "u0012" and caller.scopes == {"catalog:read", "listen"}
    assert main(["token", "--user", "u1", "--scope", "root"]) == 2
    assert "scopes are catalog:read, listen, admin" in capsys.readouterr().err
    monkeypatch.delenv("SEGUE_AUTH_SECRETS")
    assert main(["token", "--user", "u1"]) == 2
    assert "SEGUE_AUTH=jwt needs keys" in capsys.readouterr().err
    monkeypatch.setenv("SEGUE_AUTH", "jwt")
    assert main(["serve"]) == 2  # before anything starts
    assert "segue serve: SEGUE_AUTH=jwt needs keys" in capsys.readouterr().err
