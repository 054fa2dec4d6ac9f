"""deploy/: every overlay renders (`kubectl kustomize`) and validates against the Kubernetes
schemas offline (kubernetes-validate); the rendered Deployment's own command, arguments and
environment start the service, and its probe paths answer."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml

from indexes.bundle import open_bundle
from indexes.pipeline import BuildResult
from service.precompute import list_key
from service.settings import Settings
from service.store.base import RADIO
from service.store.factory import open_store
from tests.service.conftest import children, free_port

REPO = Path(__file__).resolve().parents[2]
OVERLAYS = ["dev", "prod"]
K8S_VERSION = "1.30.0"
CRDS = {"K8ssandraCluster", "PrometheusRule"}  # operators' resources: no schema in Kubernetes' own


def render(overlay: str) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        reason = "kubectl is not installed (Debian package kubectl; .ci/run installs it)"
        if os.environ.get("SEGUE_TEST_DEPLOY_REQUIRED") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    out = subprocess.run([kubectl, "kustomize", str(REPO / "deploy" / "overlays" / overlay)],
                         capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_and_validates(overlay: str) -> None:
    docs = render(overlay)
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget",
            "ConfigMap", "CronJob", "PersistentVolumeClaim", "Ingress"} <= kinds  # fmt: skip
    assert ("StatefulSet" in kinds) == (overlay == "dev")
    assert ("K8ssandraCluster" in kinds) == (overlay == "prod")
    for d in docs:
        if d["kind"] in CRDS:
            continue
        kubernetes_validate.validate(d, K8S_VERSION, strict=True)  # raises on any error
    ns = {d["metadata"].get("namespace") for d in docs}
    assert ns == {"segue-dev" if overlay == "dev" else "segue"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_ingress_limits_callers_and_routes_only_the_api(overlay: str) -> None:
    docs = render(overlay)
    ingress = next(d for d in docs if d["kind"] == "Ingress")
    notes = ingress["metadata"]["annotations"]
    assert int(notes["nginx.ingress.kubernetes.io/limit-rps"]) > 0
    assert notes["nginx.ingress.kubernetes.io/proxy-body-size"] == "1m"
    paths = {p["path"] for r in ingress["spec"]["rules"] for p in r["http"]["paths"]}
    assert paths == {"/v1", "/openapi.json", "/console"}  # not /metrics, not the probes
    service = next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "segue")
    backends = {p["backend"]["service"]["port"]["name"] for r in ingress["spec"]["rules"]
                for p in r["http"]["paths"]}  # fmt: skip
    assert backends == {p["name"] for p in service["spec"]["ports"]}


def container(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    obj = next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)
    spec = obj["spec"]["template"]["spec"] if kind == "Deployment" else \
        obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]  # fmt: skip
    c: dict[str, Any] = spec["containers"][0]
    return c


def environment(docs: list[dict[str, Any]], c: dict[str, Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    for ref in c.get("envFrom", []):
        cm = next(d for d in docs if d["kind"] == "ConfigMap"
                  and d["metadata"]["name"] == ref["configMapRef"]["name"])  # fmt: skip
        env.update(cm["data"])
    for e in c.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
        else:  # a Secret reference: optional, and there is no Secret here
            assert e["valueFrom"]["secretKeyRef"].get("optional") is True, e
    return env


@pytest.mark.slow
def test_the_deployments_own_command_serves_and_its_probes_answer(
    tiny_build: BuildResult, tmp_path: Path
) -> None:
    docs = render("dev")
    c = container(docs, "Deployment", "segue")
    env = environment(docs, c)
    assert c["command"][0] == "segue"
    port = free_port()
    # what only this machine changes: where the bundle, the store and the scratch space are,
    # and loopback instead of 0.0.0.0
    # and the token keys: the mounted Secret `segue-auth` (authentication on, as the manifest says)
    secrets = tmp_path / "auth-secrets"
    secrets.write_text(f"k1:{'s' * 40}\n")
    local = {
        "SEGUE_BUNDLES": str(tiny_build.path.parent),
        "SEGUE_STORE": f"sqlite:///{tmp_path / 'store.db'}",
        "SEGUE_METRICS_DIR": str(tmp_path / "metrics"),
        "SEGUE_HOST": "127.0.0.1",
        "SEGUE_PORT": str(port),
        "SEGUE_AUTH_SECRETS_FILE": str(secrets),
    }
    assert set(local) <= set(env)  # the manifest sets each of them
    assert env["SEGUE_AUTH"] == "jwt"
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    assert str(Path(env["SEGUE_AUTH_SECRETS_FILE"]).parent) in mounts
    workers = int(env["SEGUE_WORKERS"])
    bin_dir = str(Path(sys.executable).parent)  # where `segue` is installed
    full = {**os.environ, **env, **local, "PATH": bin_dir + os.pathsep + os.environ["PATH"]}
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([*c["command"], *c.get("args", [])], env=full, stdout=out,
                                stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True)  # fmt: skip
    try:
        probes = [c[p]["httpGet"] for p in ("livenessProbe", "readinessProbe", "startupProbe")]
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        deadline = time.monotonic() + 90
        ready = 0
        while time.monotonic() < deadline and ready < 10:
            assert proc.poll() is None, log.read_text()
            try:
                ok = all(
                    httpx.get(f"http://127.0.0.1:{port}{p['path']}", timeout=2).status_code == 200
                    for p in probes
                )
            except httpx.TransportError:
                ok = False
            ready = ready + 1 if ok else 0
            time.sleep(0.1)
        assert ready >= 10, log.read_text()
        assert {ports[p["port"]] if isinstance(p["port"], str) else p["port"] for p in probes} \
            == {int(env["SEGUE_PORT"])}  # fmt: skip
        pid = proc.pid
        assert len(children(pid)) == workers  # the uvicorn workers gunicorn forked
        r = httpx.get(f"http://127.0.0.1:{port}/v1/tracks", timeout=5)
        assert r.status_code == 401  # authentication is on
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.slow
def test_the_pipeline_cronjobs_own_script_builds_precomputes_and_publishes(tmp_path: Path) -> None:
    docs = render("dev")
    c = container(docs, "CronJob", "segue-pipeline")
    env = environment(docs, c)
    bundles = tmp_path / "bundles"
    local = {  # what only this machine changes: paths, and a small data set
        "SEGUE_BUNDLES": str(bundles),
        "SEGUE_STORE": f"sqlite:///{tmp_path / 'store.db'}",
        "SEGUE_PIPELINE_DATASET": "synthetic:300",
    }
    assert set(local) <= set(env)
    bin_dir = str(Path(sys.executable).parent)
    full = {**os.environ, **env, **local, "PATH": bin_dir + os.pathsep + os.environ["PATH"]}
    run = subprocess.run([*c["command"], *c.get("args", [])], env=full, cwd=tmp_path,
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    version = (bundles / ".pipeline-version").read_text().strip()
    assert (bundles / "current").resolve().name == version
    assert f"published {version}" in run.stdout
    # the lists were in the store before the bundle went live
    done = f"precompute of bundle {version}: complete"
    assert run.stdout.index(done) < run.stdout.index(f"published {version}")
    bundle = open_bundle(bundles / version)
    store = open_store(local["SEGUE_STORE"])
    try:
        track = bundle.tracks.id_of(0)
        with pytest.MonkeyPatch.context() as mp:  # the settings the CronJob ran with
            for name, value in {**env, **local}.items():
                mp.setenv(name, value)
            config = Settings().precompute_config()
        lists = list_key(RADIO, version=version, config=config)  # keyed by version and settings
        cached = store.get(kind=RADIO, version=lists, key=track)
        assert cached is not None and len(cached.ids) > 10
    finally:
        store.close()
        bundle.close()


def test_the_spark_overlay_runs_the_pipeline_as_a_spark_application() -> None:
    """deploy/overlays/spark: prod with the pipeline as the Spark operator's scheduled
    application instead of the CronJob; its main file is the one in the package, its arguments
    are what that file reads, the driver's account may create executor pods."""
    docs = render("spark")
    kinds = {d["kind"] for d in docs}
    assert "CronJob" not in kinds and "ScheduledSparkApplication" in kinds
    for d in docs:
        if d["kind"] not in CRDS | {"ScheduledSparkApplication"}:
            kubernetes_validate.validate(d, K8S_VERSION, strict=True)
    assert {d["metadata"].get("namespace") for d in docs} == {"segue"}
    app = next(d for d in docs if d["kind"] == "ScheduledSparkApplication")
    assert app["apiVersion"] == "sparkoperator.k8s.io/v1beta2"
    t = app["spec"]["template"]
    assert t["type"] == "Python" and t["mode"] == "cluster"
    assert t["image"] == "segue:spark"
    main = t["mainApplicationFile"].removeprefix("local:///opt/segue/lib/python3.11/site-packages/")
    assert (REPO / main).is_file(), main
    args = t["arguments"]
    assert args[args.index("--dataset") + 1] and args[args.index("--bundles") + 1] == "/bundles"
    assert t["sparkVersion"] == _pinned("pyspark")  # the image's pyspark
    for role in ("driver", "executor"):
        mounts = {m["name"]: m["mountPath"] for m in t[role]["volumeMounts"]}
        assert mounts["bundles"] == "/bundles"  # the executors map the bundle from it
        assert t[role]["envFrom"][0]["configMapRef"]["name"] == "segue-settings"
    assert t["driver"]["serviceAccount"] == "segue-spark"
    pvc = next(d for d in docs if d["kind"] == "PersistentVolumeClaim")
    assert "ReadWriteMany" in pvc["spec"]["accessModes"]
    binding = next(d for d in docs if d["kind"] == "RoleBinding")
    assert binding["subjects"][0]["name"] == "segue-spark"
    role = next(d for d in docs if d["kind"] == "Role")
    assert any("pods" in r["resources"] and "create" in r["verbs"] for r in role["rules"])


def _pinned(package: str) -> str:
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if line.lower().startswith(f"{package}=="):
            return line.split("==", 1)[1]
    raise AssertionError(f"{package} is not pinned in constraints.txt")
