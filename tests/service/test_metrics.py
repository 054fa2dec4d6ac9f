"""deploy/'s Grafana dashboard and alert rules query only metrics (and labels) that the service
really exports: a real `segue serve` is exercised on every kind of request, its /metrics is
scraped, and every `segue_*` name in a panel or a rule must be a series it wrote; and every
metric family it exports is on the dashboard."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import httpx
import yaml

from tests.service.conftest import Server

MONITORING = Path(__file__).resolve().parents[2] / "deploy" / "components" / "monitoring"
METRIC = re.compile(r"\bsegue_[a-zA-Z0-9_]+")
SELECTOR = re.compile(r"\b(segue_[a-zA-Z0-9_]+)\s*\{([^}]*)\}")
MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
ADDED_BY_PROMETHEUS = {"job", "instance"}  # target labels every scraped series gets


def dashboard_queries() -> list[str]:
    dash = json.loads((MONITORING / "dashboard.json").read_text())
    queries = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    queries += [v["definition"] for v in dash["templating"]["list"] if "definition" in v]
    return queries


def rule_queries() -> list[str]:
    rules = yaml.safe_load((MONITORING / "alerts.rules.yaml").read_text())
    return [r["expr"] for g in rules["groups"] for r in g["rules"]]


def exercise(server: Server) -> None:
    """At least one request of each kind that moves a metric."""
    with httpx.Client(base_url=server.url, timeout=10.0) as http:
        tracks = [t["id"] for t in http.get("/v1/tracks", params={"limit": 3}).json()["items"]]
        artist = http.get("/v1/artists", params={"limit": 1}).json()["items"][0]["id"]
        for t in tracks:
            assert http.get(f"/v1/tracks/{t}/similar", params={"model": "als"}).status_code == 200
            assert http.get(f"/v1/tracks/{t}/radio-neighbours").status_code == 200
            assert http.get(f"/v1/tracks/{t}/similar").status_code == 200
        assert http.get(f"/v1/artists/{artist}/related").status_code == 200
        assert http.get(f"/v1/artists/{artist}/related").status_code == 200
        assert http.get("/v1/tracks/no-such-track").status_code == 404
        station = http.post("/v1/stations", json={"user_id": "u1", "tracks": tracks[:1]}).json()
        served = http.get(f"/v1/stations/{station['id']}/tracks", params={"limit": 3}).json()
        for i, kind in enumerate(("thumbs_up", "skip", "completed", "thumbs_down")):
            r = http.post(f"/v1/stations/{station['id']}/feedback", json={
                "event_id": f"m{i}", "track_id": served["items"][i % 3]["id"], "type": kind})  # fmt: skip
            assert r.status_code == 200
        assert http.get("/v1/ops").status_code == 200


def scrape(server: Server) -> tuple[dict[str, set[str]], dict[str, str]]:
    """(label names per series name, type per metric family) of the server's /metrics."""
    text = httpx.get(server.url + "/metrics", timeout=10.0).text
    labels: dict[str, set[str]] = defaultdict(set)
    families: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            families[name] = kind
        elif line and not line.startswith("#"):
            name, _, rest = line.partition("{")
            name = name.split()[0]
            labels[name] |= set(re.findall(r'([a-zA-Z_]\w*)="', rest))
    return labels, families


def unexported(queries: list[str], exported: dict[str, set[str]]) -> list[str]:
    """What the queries use that the series `exported` (name -> label names) lack: a metric
    name (bare histogram names and wrong suffixes included), a matcher's label, a grouping
    label none of the query's metrics has."""
    problems = []
    for query in queries:
        used = set(METRIC.findall(query))
        for name in sorted(used - exported.keys()):
            problems.append(f"{name} (in {query!r}) is not exported")
        known = set().union(*(exported.get(n, set()) for n in used)) | ADDED_BY_PROMETHEUS
        for name, matchers in SELECTOR.findall(query):
            extra = set(MATCHER.findall(matchers)) - exported.get(name, set()) - ADDED_BY_PROMETHEUS
            problems += [f"{name} has no label {label!r} (in {query!r})" for label in extra]
        for group in GROUPING.findall(query):
            extra = {g.strip() for g in group.split(",") if g.strip()} - known - {"le"}
            problems += [f"no metric of {query!r} has the label {label!r}" for label in extra]
    return problems


def test_dashboards_and_alerts_query_only_what_the_service_exports(open_server: Server) -> None:
    exercise(open_server)
    exported, families = scrape(open_server)
    problems = unexported(dashboard_queries() + rule_queries(), exported)
    assert not problems, "\n".join(problems)

    # and the other way round: every family the service exports is on the dashboard
    on_dashboard = set().union(*(METRIC.findall(q) for q in dashboard_queries()))
    # (a counter's family is named with or without `_total`, depending on the exposition)
    suffixes = {"histogram": ("_bucket", "_count", "_sum"), "counter": ("_total", "")}
    missing = [
        family
        for family, kind in families.items()
        if family.startswith("segue_")
        and not any(family + s in on_dashboard for s in suffixes.get(kind, ("",)))
    ]
    assert not missing
    assert {"segue_store_up", "segue_bundle_created_timestamp_seconds"} <= exported.keys()


def test_the_check_catches_names_suffixes_and_labels_the_service_lacks() -> None:
    exported = {"segue_request_seconds_bucket": {"le", "route", "status"},
                "segue_request_seconds_count": {"route", "status"}}  # fmt: skip
    good = 'histogram_quantile(0.99, sum by (le, route) (rate(segue_request_seconds_bucket{job="a"}[5m])))'
    assert unexported([good], exported) == []
    for wrong in ("rate(segue_request_seconds[5m])", "segue_request_seconds_total",
                  'segue_request_seconds_count{model="als"}',
                  "sum by (variant) (rate(segue_request_seconds_count[5m]))"):  # fmt: skip
        assert unexported([wrong], exported), wrong
