from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.cli import main


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


def test_build_rejects_bad_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "--dataset", "mp3:/nowhere", "--out", str(tmp_path)]) == 2
    assert "unknown kind 'mp3'" in capsys.readouterr().err
    assert main(["build", "--dataset", "plays:/nowhere.csv", "--out", str(tmp_path)]) == 2
    assert "/nowhere.csv does not exist" in capsys.readouterr().err
    assert main(["build", "--dataset", "synthetic:lots", "--out", str(tmp_path)]) == 2


def test_evaluate_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "eval.json"
    args = ["--dims", "8", "--trees", "4", "--search-k", "100", "--json", str(target)]
    assert main(["evaluate", "--dataset", "synthetic:400", *args]) == 0
    table = capsys.readouterr().out
    assert "recall@20" in table and "ensemble" in table
    results = json.loads(target.read_text())
    assert set(results["entities"]["tracks"]["sources"]) == {
        "als", "word2vec", "content", "cooc", "popularity", "ensemble",
    }  # fmt: skip
