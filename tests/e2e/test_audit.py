"""flink-memory audit on the real API server: pods created while no webhook acted on them.

The objects, and the status and role each JobManager and TaskManager pod must be listed with, are
in tests/data/audit/cluster.yaml. The CLI is
run as users run it: with the cluster's kubeconfig from $KUBECONFIG, and as a kubectl plugin.
"""
import json
import os
import subprocess
import time
import uuid

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.path.join(ROOT, "build", "bin", "flink-memory")
KUBECTL = os.environ.get("FMW_KUBECTL", "kubectl")
DATA = os.path.join(ROOT, "tests", "data", "audit", "cluster.yaml")
RESOLVED = "flink-memory-webhook/resolved"


def kubectl(*args, input=None):
    p = subprocess.run([KUBECTL, *args], input=input, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, f"kubectl {' '.join(args)}: {p.stderr}"
    return p


def audit(*args, env=None):
    return subprocess.run([CLI, "audit", *args], capture_output=True, text=True, timeout=120,
                          env=env)


@pytest.fixture(scope="module")
def ns():
    name = "fmw-audit-" + uuid.uuid4().hex[:6]
    kubectl("create", "namespace", name)
    # Pods wait for the namespace's default service account (the controller manager makes it).
    for _ in range(120):
        if subprocess.run([KUBECTL, "get", "serviceaccount", "default", "-n", name],
                          capture_output=True, timeout=30).returncode == 0:
            break
        time.sleep(0.5)
    with open(DATA) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    kubectl("apply", "-n", name, "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}))
    yield name, docs
    kubectl("delete", "namespace", name, "--wait=false")


def expected(docs, key="audit.test/expect", role=None):
    return {d["metadata"]["name"]: d["metadata"]["labels"][key]
            for d in docs if d["kind"] == "Pod" and "audit.test/expect" in d["metadata"]["labels"]
            and role in (None, d["metadata"]["labels"]["audit.test/role"])}


def annotations(docs):
    return {d["metadata"]["name"]: d["metadata"].get("annotations", {}) for d in docs if d["kind"] == "Pod"}


def test_pods_were_admitted_unchanged(ns):
    name, docs = ns
    pods = json.loads(kubectl("get", "pods", "-n", name, "-o", "json").stdout)["items"]
    assert len(pods) == sum(d["kind"] == "Pod" for d in docs)
    for p in pods:
        assert RESOLVED not in p["metadata"].get("annotations", {}), "a webhook acted on the pods"


def test_json_lists_each_jobmanager_and_taskmanager_with_its_status(ns):
    name, docs = ns
    p = audit("-n", name, "--output", "json")
    assert p.returncode == 1, p.stderr  # some disagree
    rows = json.loads(p.stdout)
    assert {r["pod"]: r["status"] for r in rows} == expected(docs)
    assert {r["pod"]: r["role"] for r in rows} == expected(docs, "audit.test/role")
    by = {r["pod"]: r for r in rows}
    hand = by["jm-limit-by-hand"]
    assert hand["namespace"] == name and hand["container"] == "jobmanager"
    assert hand["limit"] == "4Gi" and hand["flinkLimit"] == "2048Mi"
    assert "memory limit 4Gi -> 2048Mi" in hand["why"]
    assert "-Xmx in _JAVA_OPTIONS" in by["jm-java-options"]["why"]
    assert by["jm-right"]["why"] == "" and by["jm-right"]["flinkJvmArgs"].startswith("-Xmx")
    assert "does not exist" in by["jm-missing-config"]["why"]
    assert "JobManager memory configuration failed" in by["jm-rejected"]["why"]
    # TaskManagers: the figures of Flink's own BashJavaUtils, from the data file.
    notes = annotations(docs)
    for pod, want in notes.items():
        if "audit.test/flink-limit" in want:
            assert by[pod]["flinkLimit"] == by[pod]["flinkRequest"] == by[pod]["totalProcess"] == want[
                "audit.test/flink-limit"], pod
        if "audit.test/flink-jvm-args" in want:
            assert by[pod]["flinkJvmArgs"] == want["audit.test/flink-jvm-args"], pod
        if "audit.test/why" in want:
            assert by[pod]["why"] == want["audit.test/why"], pod
    tm = by["tm-limit-by-hand"]
    assert tm["container"] == "taskmanager" and tm["flinkVersion"] == "1.18" and tm["limit"] == "4Gi"
    assert tm["why"] == "memory limit 4Gi -> 1728Mi; memory request 4Gi -> 1728Mi"
    assert by["tm-right"]["why"] == ""
    assert by["tm-image-default"]["source"].startswith("the image's flink-conf.yaml")
    assert "memory limit 1Gi -> 1728Mi" in by["tm-image-default"]["why"]


def test_roles_lists_one_role(ns):
    name, docs = ns
    for role in ("jobmanager", "taskmanager"):
        p = audit("-n", name, "--output", "json", "--roles", role)
        assert p.returncode == 1, p.stderr  # each role has pods that disagree
        rows = json.loads(p.stdout)
        assert {r["pod"]: r["status"] for r in rows} == expected(docs, role=role), role
        assert {r["role"] for r in rows} == {role}
    p = audit("-n", name, "--output", "json", "--roles", "taskmanager,jobmanager")
    assert {r["pod"] for r in json.loads(p.stdout)} == set(expected(docs))
    p = audit("-n", name, "--roles", "historyserver")
    assert p.returncode == 2 and "--roles takes jobmanager, taskmanager or both" in p.stderr
    # A namespace without Flink pods says which roles it looked for.
    empty = name + "-none"
    for roles, what in (("jobmanager", "JobManager"), ("taskmanager", "TaskManager"),
                        ("jobmanager,taskmanager", "JobManager or TaskManager")):
        p = audit("-n", empty, "--roles", roles)
        assert p.returncode == 0 and p.stdout == f"No {what} pods found in namespace {empty}.\n", p.stdout + p.stderr

def test_table_and_kubectl_plugin(ns, tmp_path):
    name, docs = ns
    p = audit("-n", name)
    assert p.returncode == 1, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].split() == ["NAMESPACE", "POD", "ROLE", "CONTAINER", "FLINK", "LIMIT", "REQUEST",
                                "FLINK-LIMIT", "FLINK-REQUEST", "STATUS", "WHY"]
    assert len(lines) == 1 + len(expected(docs))
    roles = expected(docs, "audit.test/role")
    for line in lines[1:]:
        cells = line.split()
        assert cells[0] == name and cells[2] == roles[cells[1]], line
    (tmp_path / "kubectl-flink_memory").symlink_to(CLI)
    env = dict(os.environ, PATH=f"{tmp_path}:{os.environ['PATH']}")
    q = subprocess.run([KUBECTL, "flink-memory", "audit", "-n", name], env=env,
                       capture_output=True, text=True, timeout=120)
    assert q.returncode == 1 and q.stdout == p.stdout, q.stderr


def test_all_namespaces_include_these(ns):
    name, docs = ns
    p = audit("-A", "--output", "json")
    assert p.returncode in (0, 1), p.stderr
    mine = {r["pod"]: r["status"] for r in json.loads(p.stdout) if r["namespace"] == name}
    assert mine == expected(docs)


def test_agreement_exits_0_and_errors_exit_2(ns, tmp_path):
    name, docs = ns
    for pod, status in expected(docs).items():
        if status in ("differs", "invalid"):
            kubectl("delete", "pod", "-n", name, pod, "--grace-period=0", "--force")
    p = audit("-n", name, "--output", "json")
    assert p.returncode == 0, p.stdout + p.stderr
    assert {r["status"] for r in json.loads(p.stdout)} <= {"ok", "unknown"}
    bad = tmp_path / "kubeconfig"
    bad.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    p = audit("-n", name, "--kubeconfig", str(bad))
    assert p.returncode == 2 and "flink-memory audit:" in p.stderr
