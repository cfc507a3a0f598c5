"""The Kubernetes manifests (deploy/kubernetes/), checked offline and by reading.

Every manifest is validated against the Kubernetes OpenAPI schemas that the
`kubernetes-validate` package ships; KEDA's kinds, which those schemas do not cover, and
kustomize's files are checked by reading. Then the invariants: one beat that can never run
twice, autoscalers on the worker Deployment only, no credential written in the files, a
grace period above the warm shutdown, and KEDA's query run against the test PostgreSQL.
"""

from __future__ import annotations

import math
import re
import shlex
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import sqlalchemy as sa
import yaml
from test_stats import ROWS, row

from config import defaults

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy" / "kubernetes"
OVERLAYS = ("hpa", "keda")
KUBERNETES_VERSIONS = ("1.27", kubernetes_validate.latest_version())
KEDA = "keda.sh/v1alpha1"
KUSTOMIZE = "kustomize.config.k8s.io/v1beta1"
SECRET_NAME = re.compile(r"PASS|SECRET|TOKEN|AUTH|KEY|URL", re.IGNORECASE)
URL_CREDENTIALS = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]*:[^@\s]+@")


def manifest_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*.yaml") if p.name != "kustomization.yaml")


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def kustomization(folder: str) -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / folder / "kustomization.yaml").read_text())


def overlay(name: str) -> list[dict[str, Any]]:
    """Every object `kubectl apply -k deploy/kubernetes/NAME` creates (resources only)."""
    found: list[dict[str, Any]] = []
    folder = DEPLOY / name
    for resource in kustomization(name)["resources"]:
        path = (folder / resource).resolve()
        if path.is_dir():
            found += overlay(str(path.relative_to(DEPLOY)))
        else:
            found += documents(path)
    return found


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = obj["spec"]
    pod = spec["template"]["spec"] if "template" in spec else spec
    return pod.get("containers", []) + pod.get("initContainers", [])


def pod_owners() -> list[dict[str, Any]]:
    objects = [doc for path in manifest_files() for doc in documents(path)]
    return [o for o in objects if o["kind"] in ("Deployment", "Job")]


def settings() -> dict[str, str]:
    return by_kind(overlay("base"), "ConfigMap")["flowrt-settings"]["data"]


def keda_query() -> str:
    (scaled,) = by_kind(overlay("keda"), "ScaledObject").values()
    return scaled["spec"]["triggers"][0]["metadata"]["query"]


# --- schemas --------------------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_kubernetes_object_is_valid_against_the_schemas_offline(path, version):
    for doc in documents(path):
        if doc["apiVersion"] == KEDA:
            continue  # not in the Kubernetes schemas: see the KEDA tests below
        kubernetes_validate.validate(doc, version, strict=True)


def test_each_kustomization_lists_files_that_exist_and_every_manifest_is_listed():
    listed: set[Path] = set()
    for folder in ("base", *OVERLAYS):
        found = kustomization(folder)
        assert found["apiVersion"] == KUSTOMIZE and found["kind"] == "Kustomization"
        for resource in found["resources"]:
            path = (DEPLOY / folder / resource).resolve()
            assert path.exists(), f"{folder}/kustomization.yaml lists {resource}, not there"
            listed.add(path)
    assert set(manifest_files()) <= listed


def test_the_keda_scaled_object_and_its_authentication_have_the_fields_keda_reads():
    objects = overlay("keda")
    (scaled,) = by_kind(objects, "ScaledObject").values()
    spec = scaled["spec"]
    assert scaled["apiVersion"] == KEDA
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "flowrt-worker",
    }
    assert 0 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    assert all(isinstance(spec[k], int) for k in ("pollingInterval", "cooldownPeriod"))
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "postgresql"
    metadata = trigger["metadata"]
    assert isinstance(metadata["targetQueryValue"], str) and float(metadata["targetQueryValue"])
    assert set(metadata) == {"query", "targetQueryValue"}  # the connection is in the auth
    auth = by_kind(objects, "TriggerAuthentication")[trigger["authenticationRef"]["name"]]
    assert auth["apiVersion"] == KEDA
    assert auth["spec"]["secretTargetRef"] == [
        {"parameter": "connection", "name": "flowrt", "key": "FLOWRT_DATABASE_URL"}
    ]


# --- invariants -----------------------------------------------------------------------------


def test_beat_is_one_replica_replaced_by_recreate_so_it_never_runs_twice():
    beats = [d for d in by_kind(overlay("base"), "Deployment").values() if is_beat(d)]
    assert [b["metadata"]["name"] for b in beats] == ["flowrt-beat"]
    assert beats[0]["spec"]["replicas"] == 1
    assert beats[0]["spec"]["strategy"] == {"type": "Recreate"}


def is_beat(deployment: dict[str, Any]) -> bool:
    return any("beat" in c.get("command", []) for c in containers(deployment))


@pytest.mark.parametrize("name", OVERLAYS)
def test_each_overlay_has_one_autoscaler_and_it_targets_the_worker_deployment(name):
    objects = overlay(name)
    scalers = [o for o in objects if o["kind"] in ("HorizontalPodAutoscaler", "ScaledObject")]
    assert len(scalers) == 1, "two autoscalers on one Deployment fight over its replicas"
    target = scalers[0]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "flowrt-worker")
    worker = by_kind(objects, "Deployment")[target["name"]]
    assert not is_beat(worker) and "replicas" not in worker["spec"]


def test_the_hpa_scales_the_workers_on_cpu():
    (hpa,) = by_kind(overlay("hpa"), "HorizontalPodAutoscaler").values()
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["type"] == "Utilization"


def test_no_credential_is_written_in_the_manifests_only_read_from_the_secret():
    assert not [o for p in manifest_files() for o in documents(p) if o["kind"] == "Secret"]
    for owner in pod_owners():
        for container in containers(owner):
            for var in container.get("env", []):
                where = f"{owner['metadata']['name']}: {var['name']}"
                if SECRET_NAME.search(var["name"]):
                    assert "value" not in var, f"{where} is written in the manifest"
                    assert var["valueFrom"]["secretKeyRef"]["name"] == "flowrt", where
                assert not URL_CREDENTIALS.search(str(var.get("value", ""))), where
    for path in [*manifest_files(), DEPLOY / "secret.env.example"]:
        assert not URL_CREDENTIALS.search(path.read_text()), path


def test_the_example_secret_names_every_key_the_manifests_read_and_holds_no_value():
    example = (DEPLOY / "secret.env.example").read_text().splitlines()
    entries = dict(line.split("=", 1) for line in example if line and not line.startswith("#"))
    assert set(entries.values()) == {""}
    read = {
        var["valueFrom"]["secretKeyRef"]["key"]
        for owner in pod_owners()
        for container in containers(owner)
        for var in container.get("env", [])
        if "secretKeyRef" in var.get("valueFrom", {})
    }
    assert read == set(entries)


def test_the_workers_grace_period_is_above_their_warm_shutdown():
    default = defaults.SHUTDOWN_GRACE_SECONDS
    grace_s = float(settings().get("FLOWRT_SHUTDOWN_GRACE_SECONDS", default))
    worker = by_kind(overlay("base"), "Deployment")["flowrt-worker"]
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > grace_s + 5


def test_every_worker_has_its_pod_name_as_node_name_a_fixed_hash_seed_and_autoscale():
    worker = by_kind(overlay("base"), "Deployment")["flowrt-worker"]
    (container,) = containers(worker)
    command = container["command"]
    assert command[:4] == ["celery", "-A", "tasks", "worker"]
    assert "--hostname=celery@$(POD_NAME)" in command
    assert any(re.fullmatch(r"--autoscale=\d+,\d+", arg) for arg in command)
    env = {var["name"]: var for var in container["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["PYTHONHASHSEED"]["value"].isdigit()


def test_worker_probes_ping_this_worker_by_its_node_name():
    (container,) = containers(by_kind(overlay("base"), "Deployment")["flowrt-worker"])
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        command = shlex.split(container[probe]["exec"]["command"][-1])
        assert command[:5] == ["exec", "celery", "-A", "tasks", "inspect"], probe
        assert "ping" in command and "celery@$POD_NAME" in command, probe
        assert container[probe]["timeoutSeconds"] > float(command[command.index("-t") + 1])


def test_every_container_has_resources_requested_and_a_memory_limit():
    for owner in pod_owners():
        for container in containers(owner):
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), owner["metadata"]["name"]
            assert "memory" in resources["limits"], owner["metadata"]["name"]


def test_the_keda_divisor_is_the_maximum_the_workers_autoscale_to():
    (container,) = containers(by_kind(overlay("base"), "Deployment")["flowrt-worker"])
    (autoscale,) = [a for a in container["command"] if a.startswith("--autoscale=")]
    maximum = int(autoscale.split("=")[1].split(",")[0])
    assert re.search(rf"/\s*{maximum}\)", keda_query()), keda_query()


# --- KEDA's query on PostgreSQL -------------------------------------------------------------


@pytest.fixture
def pg(pg_clean: str):
    engine = sa.create_engine(pg_clean)
    yield engine
    engine.dispose()


def runnable_count_query() -> str:
    """KEDA's query counting instead of dividing: what it counts, to compare."""
    return "SELECT count(*) FROM executions WHERE " + keda_query().split("WHERE", 1)[1]


@pytest.mark.postgres
def test_the_keda_query_counts_running_and_due_executions_not_sleeping_or_ended_ones(pg):
    from flowrt.storage.backlog import measure
    from flowrt.storage.schema import executions

    with pg.begin() as conn:
        conn.execute(executions.insert(), ROWS)
        counted = conn.exec_driver_sql(runnable_count_query()).scalar_one()
        wanted_pods = conn.exec_driver_sql(keda_query()).scalar_one()
    assert counted == 3 == measure(pg, _now()).runnable  # 2 RUNNING, 1 WAITING and due
    assert wanted_pods == math.ceil(3 / 16)


@pytest.mark.postgres
def test_the_keda_query_wants_no_pod_for_executions_that_sleep_wait_or_ended(pg):
    from flowrt.storage.schema import executions

    idle = [r for r in ROWS if r["status"] != "RUNNING" and not _due(r)]
    with pg.begin() as conn:
        conn.execute(executions.insert(), idle)
        assert conn.exec_driver_sql(keda_query()).scalar_one() == 0


@pytest.mark.postgres
def test_the_keda_query_reads_indexes_not_the_whole_table(pg):
    from flowrt.storage.schema import executions

    with pg.begin() as conn:
        conn.execute(executions.insert(), [row("WAITING", wake_at=_now()) for _ in range(50)])
        conn.exec_driver_sql("ANALYZE executions")
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        plan = "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + keda_query()))
    assert "Seq Scan" not in plan, plan


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def _due(r: dict[str, Any]) -> bool:
    return r["status"] == "WAITING" and r["wake_at"] is not None and r["wake_at"] <= _now()
