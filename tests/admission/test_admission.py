"""The admission pipeline on a corpus of realistic AdmissionReviews (tests/data/admission).

Each case is reviewed by `flink-memory review` (the server's exact pipeline); the JSON Patch is
applied with an independent RFC 6902 implementation (the jsonpatch package) and the result is
compared with the expected object; the patched object is then reviewed again and must yield no
patch. A second test sends the cases that need no ConfigMap to the running webhook over TLS and
requires byte-identical answers.
"""
import base64
import copy
import json
import os
import socket
import ssl
import subprocess
import tempfile
import time
import uuid

import jsonpatch
import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, "build", "bin", "flink-memory")
WEBHOOK = os.path.join(ROOT, "build", "bin", "flink-memory-webhook")
with open(os.path.join(ROOT, "tests", "data", "admission", "cases.yaml")) as f:
    CORPUS = yaml.safe_load(f)
CASES = CORPUS["cases"]
RESOLVED = "flink-memory-webhook/resolved"


def api_server_defaults(pod, ns):
    """What the API server's defaulting and admission add to a Pod before webhooks see it."""
    pod = copy.deepcopy(pod)
    pod.setdefault("apiVersion", "v1")
    meta = pod.setdefault("metadata", {})
    meta.setdefault("namespace", ns)
    meta.setdefault("creationTimestamp", None)
    spec = pod["spec"]
    token_volume = "kube-api-access-" + uuid.uuid4().hex[:5]
    spec.setdefault("volumes", []).append({
        "name": token_volume,
        "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
        ]},
    })
    for c in spec["containers"]:
        c.setdefault("imagePullPolicy", "IfNotPresent")
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        c.setdefault("resources", {})
        c.setdefault("volumeMounts", []).append({
            "name": token_volume, "readOnly": True,
            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"})
        for v in spec["volumes"]:
            if "configMap" in v:
                v["configMap"].setdefault("defaultMode", 420)
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("serviceAccount", "default")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    spec.setdefault("priority", 0)
    spec.setdefault("tolerations", [
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
    ])
    return pod


GROUPS = {"Deployment": "apps", "StatefulSet": "apps", "ReplicaSet": "apps", "Job": "batch", "CronJob": "batch"}
RESOURCES = {"Pod": "pods", "Deployment": "deployments", "StatefulSet": "statefulsets",
             "ReplicaSet": "replicasets", "Job": "jobs", "CronJob": "cronjobs"}


def review_of(obj, operation="CREATE", ns="flink", dry_run=False):
    kind = obj["kind"]
    group = GROUPS.get(kind, "")
    version = "v1"
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": RESOURCES[kind]},
            "requestKind": {"group": group, "version": version, "kind": kind},
            "requestResource": {"group": group, "version": version, "resource": RESOURCES[kind]},
            "name": obj["metadata"].get("name", ""),
            "namespace": ns,
            "operation": operation,
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller",
                         "groups": ["system:serviceaccounts", "system:authenticated"]},
            "object": obj,
            "oldObject": None,
            "dryRun": dry_run,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }


@pytest.fixture(scope="module")
def configmaps(tmp_path_factory):
    path = tmp_path_factory.mktemp("cm") / "configmaps.yaml"
    path.write_text(yaml.safe_dump_all(CORPUS["configmaps"]))
    return str(path)


def run_review(review, configmaps, flags):
    p = subprocess.run([BIN, "review", "--configmap", configmaps] + flags,
                       input=json.dumps(review), capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return p.stdout


def pod_template(obj):
    kind = obj["kind"]
    if kind == "Pod":
        return obj
    if kind == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]
    return obj["spec"]["template"]


def jm_container(pod, name=None):
    containers = pod["spec"]["containers"]
    if name:
        return next(c for c in containers if c["name"] == name)
    ann = (pod.get("metadata") or {}).get("annotations") or {}
    wanted = ann.get("flink-memory-webhook/container")
    for c in containers:
        if c["name"] in (wanted, "jobmanager", "flink-main-container", "jm"):
            return c
    return containers[0]


def whole_remarks(warnings):
    """Warnings put back together: a remark too long for one warning goes on in the next, the
    first piece ending in " ..." and the next starting "... " after the same prefix."""
    remarks = []
    for w in warnings:
        head, sep, body = w.partition(": ... ")
        if sep and remarks and remarks[-1].endswith(" ..."):
            remarks[-1] = remarks[-1][:-4] + " " + body
        else:
            remarks.append(w)
    return remarks


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case(case, configmaps):
    obj = case["object"]
    obj = api_server_defaults(obj, "flink") if obj["kind"] == "Pod" else copy.deepcopy(obj)
    review = review_of(obj, case.get("operation", "CREATE"))
    flags = case.get("flags", [])
    out = run_review(review, configmaps, flags)
    assert out.endswith("\n")
    answer = json.loads(out)
    assert answer["apiVersion"] == "admission.k8s.io/v1" and answer["kind"] == "AdmissionReview"
    resp = answer["response"]
    assert resp["uid"] == review["request"]["uid"]
    expect = case["expect"]

    warnings = resp.get("warnings", [])
    for w in warnings:
        assert 0 < len(w.encode()) <= 256, w
    remarks = whole_remarks(warnings)
    for text in expect.get("warnings", []):
        assert any(text in w for w in remarks), (text, remarks)
    if expect.get("no_warnings"):
        assert warnings == []
    for text in expect.get("absent_warnings", []):
        assert not any(text in w for w in remarks), (text, remarks)

    assert resp["allowed"] == expect.get("allowed", True), resp
    if "message" in expect:
        assert resp["status"]["message"] == expect["message"]
        assert "patch" not in resp
        return

    patched_expected = expect.get("patched", "container" in expect or "annotation" in expect)
    if not patched_expected:
        assert "patch" not in resp, resp
        return
    assert resp["patchType"] == "JSONPatch"
    patch = json.loads(base64.b64decode(resp["patch"]))
    result = jsonpatch.apply_patch(obj, patch)

    # The expected object: the input with the container's fields and the annotation replaced.
    want = copy.deepcopy(obj)
    want_pod = pod_template(want)
    container = jm_container(want_pod)
    for key, value in expect.get("container", {}).items():
        container[key] = value
    got_pod = pod_template(result)
    got_annotation = json.loads(got_pod["metadata"]["annotations"][RESOLVED])
    for key, value in expect.get("annotation", {}).items():
        assert got_annotation[key] == value, key
    want_pod.setdefault("metadata", {}).setdefault("annotations", {})[RESOLVED] = \
        got_pod["metadata"]["annotations"][RESOLVED]
    assert result == want

    # Idempotence: our own output needs no patch.
    again = json.loads(run_review(review_of(result, case.get("operation", "CREATE")), configmaps, flags))
    assert again["response"]["allowed"] is True
    assert "patch" not in again["response"], again


def test_dry_run_request_still_gets_the_patch(configmaps):
    """kubectl --dry-run=server: the API server sets dryRun and shows the mutated object."""
    case = CASES[0]
    review = review_of(api_server_defaults(case["object"], "flink"), dry_run=True)
    resp = json.loads(run_review(review, configmaps, []))["response"]
    assert resp["allowed"] and "patch" in resp


@pytest.mark.parametrize("body,reason", [
    (b"", "not JSON"),
    (b"{", "not JSON"),
    (b"[]", "apiVersion"),
    (b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}', "request.uid"),
    (b'{"apiVersion":"v1","kind":"AdmissionReview","request":{"uid":"x"}}', "apiVersion"),
    (b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","uid":"b"}}', "not JSON"),
])
def test_bad_reviews_are_usage_errors(body, reason, configmaps):
    p = subprocess.run([BIN, "review"], input=body, capture_output=True, timeout=30)
    assert p.returncode == 2
    assert reason in p.stderr.decode()


def test_wrongly_typed_fields_still_answer(configmaps):
    review = review_of(api_server_defaults(CASES[0]["object"], "flink"))
    review["request"]["object"]["spec"]["containers"][0]["args"] = "jobmanager"  # not a list
    review["request"]["object"]["spec"]["containers"][0]["env"] = {"a": 1}
    review["request"]["object"]["spec"]["volumes"] = "none"
    resp = json.loads(run_review(review, configmaps, []))["response"]
    assert resp["allowed"] is True


# ---- the server gives byte-identical answers ----

def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def webhook(tmp_path_factory):
    d = tmp_path_factory.mktemp("wh")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem"),
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    # No API server is needed for cases without ConfigMaps; one that refuses at once will do.
    (d / "kubeconfig").write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "x",
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "clusters": [{"name": "c", "cluster": {"server": f"https://127.0.0.1:{_free_port()}"}}],
        "users": [{"name": "u", "user": {"token": "t"}}]}))
    port = _free_port()
    proc = subprocess.Popen([WEBHOOK, "--tls-cert-file", str(d / "cert.pem"), "--tls-key-file",
                             str(d / "key.pem"), "--kubeconfig", str(d / "kubeconfig"), "--port",
                             str(port), "--health-port", "-1", "--drain-delay-ms", "0"],
                            stderr=subprocess.PIPE)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    ctx = ssl.create_default_context(cafile=str(d / "cert.pem"))
    yield port, ctx
    proc.terminate()
    assert proc.wait(timeout=30) == 0


def _post(port, ctx, body, path="/mutate"):
    import http.client
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    conn.request("POST", path + "?timeout=10s", body=body, headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, data


def _needs_no_configmap(case):
    pod = pod_template(case["object"])
    ann = (pod.get("metadata") or {}).get("annotations") or {}
    env_from = any(c.get("envFrom") for c in pod["spec"]["containers"])
    return not pod["spec"].get("volumes") and "flink-memory-webhook/configmap" not in ann and not env_from


@pytest.mark.parametrize("case", [c for c in CASES if _needs_no_configmap(c)],
                         ids=[c["name"] for c in CASES if _needs_no_configmap(c)])
def test_server_and_cli_answer_byte_for_byte(case, webhook):
    # A namespace's sizing reaches the server as a path (the chart's namespaceSelector sends its
    # pods to /mutate/from-limit or /mutate/from-request); other flags are the server's own.
    flags = case.get("flags", [])
    path = "/mutate"
    if flags[:1] == ["--sizing"] and len(flags) == 2:
        path = "/mutate/" + flags[1]
    elif flags:
        pytest.skip("the running server uses default flags")
    port, ctx = webhook
    obj = case["object"]
    obj = api_server_defaults(obj, "flink") if obj["kind"] == "Pod" else copy.deepcopy(obj)
    body = json.dumps(review_of(obj, case.get("operation", "CREATE"))).encode()
    status, data = _post(port, ctx, body, path)
    assert status == 200
    p = subprocess.run([BIN, "review"] + flags, input=body, capture_output=True, timeout=30)
    assert p.returncode == 0
    assert p.stdout == data + b"\n"
