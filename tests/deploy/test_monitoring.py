"""deploy/components/monitoring: the alert rules pass `promtool check rules` and their unit tests
(`promtool test rules`), the PrometheusRule carries exactly the plain rules file, and the
dashboard ConfigMap carries exactly the dashboard JSON. (That every metric they query is one the
service exports is tested against a real server: tests/service/test_metrics.py.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.test_manifests import render

MONITORING = Path(__file__).resolve().parents[2] / "deploy" / "components" / "monitoring"
RULES = MONITORING / "alerts.rules.yaml"
RULE_TESTS = MONITORING / "alerts.test.yaml"
DASHBOARD = MONITORING / "dashboard.json"
ALERTS = {"SegueHigh5xxRatio", "SegueHighP99Latency", "SegueStoreDown", "SegueBundleStale",
          "SegueBundleRefused"}  # fmt: skip


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        reason = "promtool is not installed (Debian package prometheus; .ci/run installs it)"
        if os.environ.get("SEGUE_TEST_MONITORING_REQUIRED") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=120,
                          cwd=MONITORING, check=False)  # fmt: skip


def test_the_rules_pass_promtool_check() -> None:
    out = run("check", "rules", RULES.name)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in out.stdout + out.stderr


def test_the_rules_pass_their_unit_tests() -> None:
    out = run("test", "rules", RULE_TESTS.name)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout + out.stderr


def test_every_alert_has_a_unit_test_that_fires_it() -> None:
    rules = yaml.safe_load(RULES.read_text())
    assert {r["alert"] for g in rules["groups"] for r in g["rules"]} == ALERTS
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired = {c["alertname"] for t in tests for c in t["alert_rule_test"] if c["exp_alerts"]}
    quiet = {c["alertname"] for t in tests for c in t["alert_rule_test"] if not c["exp_alerts"]}
    assert fired == ALERTS and quiet == ALERTS


def rendered(kind: str, name: str) -> dict[str, Any]:
    docs = render("prod")
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def test_the_prometheusrule_is_the_rules_file() -> None:
    rule = rendered("PrometheusRule", "segue")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["namespace"] == "segue"
    assert rule["spec"] == yaml.safe_load(RULES.read_text())


def test_the_dashboard_configmap_is_the_dashboard() -> None:
    cm = rendered("ConfigMap", "segue-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"  # Grafana's sidecar finds it
    assert json.loads(cm["data"]["segue.json"]) == json.loads(DASHBOARD.read_text())


def test_the_dashboard_is_well_formed() -> None:
    dash = json.loads(DASHBOARD.read_text())
    panels = dash["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    for p in panels:
        assert {"h", "w", "x", "y"} <= set(p["gridPos"]) and p["gridPos"]["x"] + p["gridPos"][
            "w"
        ] <= 24
        if p["type"] != "row":
            assert p["targets"] and all(t["expr"].strip() for t in p["targets"]), p["title"]
            assert p["datasource"]["uid"] == "${datasource}"
    names = {v["name"] for v in dash["templating"]["list"]}
    assert {"datasource", "job"} <= names
