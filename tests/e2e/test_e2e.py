"""End to end on the local control plane: the real kube-apiserver calls the webhook over TLS.

Runs under tests/cluster/with-cluster.sh (build/cluster/env sourced). The webhook runs as a local
process with the cluster's kubeconfig; a MutatingWebhookConfiguration points the API server at
it with clientConfig.url and a caBundle of a CA made here.
"""
import base64
import json
import os
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import uuid

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WEBHOOK = os.path.join(ROOT, "build", "bin", "flink-memory-webhook")
CLI = os.path.join(ROOT, "build", "bin", "flink-memory")
KUBECTL = os.environ.get("FMW_KUBECTL", "kubectl")
RESOLVED = "flink-memory-webhook/resolved"


UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "": 1}


def qty(text):
    """Bytes of a memory quantity; the API server stores 2048Mi as 2Gi."""
    for suffix in ("Ki", "Mi", "Gi", "Ti"):
        if text.endswith(suffix):
            return int(text[:-2]) * UNITS[suffix]
    return int(text)


def kubectl(*args, input=None, check=True):
    p = subprocess.run([KUBECTL, *args], input=input, capture_output=True, text=True, timeout=60)
    if check and p.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)}: {p.stderr}")
    return p


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_certs(d):
    """A CA and a serving certificate for 127.0.0.1 signed by it."""
    def run(*a):
        subprocess.run(a, check=True, capture_output=True, cwd=d)
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-keyout",
        "ca.key", "-out", "ca.crt", "-subj", "/CN=fmw-e2e-ca")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "tls.key", "-out", "tls.csr",
        "-subj", "/CN=127.0.0.1")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    run("openssl", "x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "1", "-out", "tls.crt", "-extfile", "ext.cnf")


class Webhook:
    def __init__(self, d):
        self.dir = d
        self.port = free_port()
        self.proc = None

    def start(self):
        self.log = open(os.path.join(self.dir, "webhook.log"), "a")
        self.proc = subprocess.Popen(
            [WEBHOOK, "--tls-cert-file", os.path.join(self.dir, "tls.crt"),
             "--tls-key-file", os.path.join(self.dir, "tls.key"),
             "--kubeconfig", os.environ["KUBECONFIG"], "--listen-address", "127.0.0.1",
             "--port", str(self.port), "--health-port", "-1", "--drain-delay-ms", "0"],
            stderr=self.log)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("the webhook did not start")

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            assert self.proc.wait(timeout=30) == 0


@pytest.fixture(scope="module")
def env():
    d = tempfile.mkdtemp(prefix="fmw-e2e-")
    make_certs(d)
    wh = Webhook(d)
    wh.start()
    ns = "fmw-e2e-" + uuid.uuid4().hex[:6]
    mwc = "fmw-e2e-" + uuid.uuid4().hex[:6]
    kubectl("create", "namespace", ns)
    kubectl("label", "namespace", ns, "fmw-e2e=" + mwc)
    with open(os.path.join(d, "ca.crt"), "rb") as f:
        ca = base64.b64encode(f.read()).decode()
    # One webhook per role, as the chart makes one per label (the webhook runs with both roles,
    # its default): JobManagers first, so /webhooks/0 is theirs.
    config = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": mwc},
        "webhooks": [{
            "name": f"{role}.flink-memory-webhook.apache-flink.io",
            "clientConfig": {"url": f"https://127.0.0.1:{wh.port}/mutate", "caBundle": ca},
            "rules": [
                {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]},
                {"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                 "resources": ["deployments", "statefulsets", "replicasets"]},
            ],
            "namespaceSelector": {"matchLabels": {"fmw-e2e": mwc}},
            "objectSelector": {"matchExpressions": [{"key": "component", "operator": "In", "values": [role]}]},
            "failurePolicy": "Ignore",
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "timeoutSeconds": 5,
            "reinvocationPolicy": "IfNeeded",
            "matchPolicy": "Equivalent",
        } for role in ("jobmanager", "taskmanager")],
    }
    kubectl("apply", "-f", "-", input=json.dumps(config))
    # The API server picks up new webhook configurations asynchronously: wait until it calls us.
    for probe in (pod("probe", "flink:1.18.1", labels={"component": "jobmanager"}),
                  tm_pod("probe", "flink:1.18.1")):
        deadline = time.time() + 30
        while time.time() < deadline:
            p = kubectl("apply", "--dry-run=server", "-n", ns, "-o", "json", "-f", "-", input=json.dumps(probe),
                        check=False)
            if p.returncode == 0 and RESOLVED in json.loads(p.stdout)["metadata"].get("annotations", {}):
                break
            time.sleep(0.5)
        else:
            raise AssertionError("the API server never called the webhook for " + probe["spec"]["containers"][0]["name"])
    yield {"ns": ns, "mwc": mwc, "webhook": wh, "dir": d}
    wh.stop()
    kubectl("delete", "mutatingwebhookconfiguration", mwc, "--ignore-not-found", check=False)
    kubectl("delete", "namespace", ns, "--wait=false", check=False)


def pod(name, image, args=("jobmanager",), labels=None, env=None, resources=None, mounts=None,
        volumes=None, command=None):
    c = {"name": "jobmanager", "image": image, "args": list(args)}
    if command:
        c["command"] = command
    if env:
        c["env"] = env
    if resources:
        c["resources"] = resources
    if mounts:
        c["volumeMounts"] = mounts
    spec = {"containers": [c]}
    if volumes:
        spec["volumes"] = volumes
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels or {"component": "jobmanager"}},
            "spec": spec}


def tm_pod(name, image, **kw):
    """A TaskManager as Flink's docs write one: container taskmanager, args [taskmanager]."""
    obj = pod(name, image, args=kw.pop("args", ("taskmanager",)),
              labels=kw.pop("labels", {"app": "flink", "component": "taskmanager"}), **kw)
    obj["spec"]["containers"][0]["name"] = "taskmanager"
    return obj


def configmap(name, data):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def conf_volume(cm, key=None):
    v = {"name": "flink-config", "configMap": {"name": cm}}
    if key:
        v["configMap"]["items"] = [{"key": key, "path": key}]
    return [v]


CONF_MOUNT = [{"name": "flink-config", "mountPath": "/opt/flink/conf"}]


def apply(ns, obj, *extra, check=True):
    return kubectl("apply", "-n", ns, "-f", "-", *extra, input=json.dumps(obj), check=check)


def get(ns, kind, name):
    return json.loads(kubectl("get", "-n", ns, kind, name, "-o", "json").stdout)


def test_deployment_pods_are_sized_by_the_webhook(env):
    ns = env["ns"]
    apply(ns, configmap("session-conf", {"flink-conf.yaml":
          "jobmanager.rpc.address: jm\njobmanager.memory.process.size: 2g\n"
          "env.java.opts.jobmanager: -Xmx4g -XX:+UseG1GC\n"}))
    dep = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "flink-jobmanager", "labels": {"component": "jobmanager"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "flink", "component": "jobmanager"}},
                 "template": {"metadata": {"labels": {"app": "flink", "component": "jobmanager"}},
                              "spec": pod("x", "flink:1.18.1", resources={"limits": {"memory": "1Gi"}},
                                          mounts=CONF_MOUNT, volumes=conf_volume("session-conf"))["spec"]}},
    }
    p = apply(ns, dep)
    assert "pods will get memory limit 1Gi -> 2048Mi" in p.stderr, p.stderr
    deadline = time.time() + 60
    pods = []
    while time.time() < deadline:
        pods = json.loads(kubectl("get", "pods", "-n", ns, "-l", "app=flink,component=jobmanager", "-o", "json").stdout)[
            "items"]
        if pods:
            break
        time.sleep(0.5)
    assert pods, "the controller manager created no pod"
    c = pods[0]["spec"]["containers"][0]
    assert qty(c["resources"]["limits"]["memory"]) == 2 * 2**30
    assert qty(c["resources"]["requests"]["memory"]) == 2 * 2**30
    assert {"name": "FLINK_ENV_JAVA_OPTS_JM", "value": "-Xmx1530082096 -XX:+UseG1GC"} in c["env"]
    resolved = json.loads(pods[0]["metadata"]["annotations"][RESOLVED])
    assert resolved["heap"] == 1530082096 and resolved["flinkVersion"] == "1.18"
    # The Deployment itself is left as written (workloads: warn).
    assert qty(get(ns, "deployment", "flink-jobmanager")["spec"]["template"]["spec"]["containers"][0][
        "resources"]["limits"]["memory"]) == 2**30


def test_bare_pod_with_standard_config_yaml(env):
    ns = env["ns"]
    apply(ns, configmap("app-conf", {"config.yaml": "jobmanager:\n  memory:\n    process:\n      size: 4g\n"}))
    apply(ns, pod("app-jm", "flink:2.0.0-java17", args=["standalone-job", "--job-classname", "x.Y"],
                  mounts=CONF_MOUNT, volumes=conf_volume("app-conf")))
    c = get(ns, "pod", "app-jm")["spec"]["containers"][0]
    assert {k: qty(v["memory"]) for k, v in c["resources"].items()} == {"limits": 4 * 2**30, "requests": 4 * 2**30}


def test_dry_run_server_shows_the_patch_and_stores_nothing(env):
    ns = env["ns"]
    obj = pod("dry", "flink:1.17.2", env=[{"name": "_JAVA_OPTIONS", "value": "-Xmx8g"}],
              resources={"limits": {"memory": "8Gi"}})
    p = apply(ns, obj, "--dry-run=server", "-o", "yaml")
    shown = yaml.safe_load(p.stdout)
    c = shown["spec"]["containers"][0]
    assert qty(c["resources"]["limits"]["memory"]) == 1600 * 2**20
    assert c["env"] == [{"name": "_JAVA_OPTIONS", "value": "-Xmx1073741824"}]
    assert "Warning: flink-memory-webhook: jobmanager: memory limit 8Gi -> 1600Mi (Flink 1.17)" in p.stderr
    assert kubectl("get", "-n", ns, "pod", "dry", check=False).returncode != 0


def test_config_flink_rejects_is_denied_with_flinks_text(env):
    ns = env["ns"]
    apply(ns, configmap("bad-conf", {"flink-conf.yaml":
          "jobmanager.memory.process.size: 1g\njobmanager.memory.jvm-metaspace.size: 1g\n"}))
    p = apply(ns, pod("bad", "flink:1.18.1", mounts=CONF_MOUNT, volumes=conf_volume("bad-conf")), check=False)
    assert p.returncode != 0
    assert ("jobmanager: JobManager memory configuration failed: Sum of configured JVM Metaspace "
            "(1024.000mb (1073741824 bytes)) and JVM Overhead (192.000mb (201326592 bytes)) exceed "
            "configured Total Process Memory (1024.000mb (1073741824 bytes)).") in p.stderr, p.stderr


def test_missing_configmap_allows_with_a_warning(env):
    ns = env["ns"]
    p = apply(ns, pod("orphan", "flink:1.18.1", resources={"limits": {"memory": "3Gi"}},
                      mounts=CONF_MOUNT, volumes=conf_volume("nowhere")))
    assert "config not read, pod unchanged: ConfigMap" in p.stderr and "nowhere" in p.stderr
    c = get(ns, "pod", "orphan")["spec"]["containers"][0]
    assert c["resources"]["limits"]["memory"] == "3Gi"


def test_pod_level_resources_are_respected(env):
    """PodLevelResources: the API server refuses a container limit above the pod's limit and a pod
    request below the containers' requests. A pod-level budget that fits Flink's size is kept and
    the container sized; one that does not leaves the pod as written, admitted, with a warning."""
    ns = env["ns"]
    fits = pod("plr-fits", "flink:1.18.1", resources={"limits": {"memory": "1Gi"}})
    fits["spec"]["resources"] = {"limits": {"memory": "4Gi"}, "requests": {"memory": "2Gi"}}
    apply(ns, fits)
    got = get(ns, "pod", "plr-fits")
    assert qty(got["spec"]["containers"][0]["resources"]["limits"]["memory"]) == 1600 * 2**20
    assert got["spec"]["resources"] == fits["spec"]["resources"]
    small = pod("plr-small", "flink:1.18.1", resources={"limits": {"memory": "1Gi"}})
    small["spec"]["resources"] = {"limits": {"memory": "1Gi"}}
    p = apply(ns, small)
    assert "config not read, pod unchanged: pod memory limit 1Gi < Flink's 1600Mi" in p.stderr, p.stderr
    assert get(ns, "pod", "plr-small")["spec"]["containers"][0]["resources"]["limits"]["memory"] == "1Gi"


def test_env_from_a_configmap_is_read(env):
    ns = env["ns"]
    apply(ns, configmap("jvm-env", {"_JAVA_OPTIONS": "-Xmx4g"}))
    obj = pod("env-from", "flink:1.18.1")
    obj["spec"]["containers"][0]["envFrom"] = [{"configMapRef": {"name": "jvm-env"}}]
    apply(ns, obj)
    c = get(ns, "pod", "env-from")["spec"]["containers"][0]
    assert c["env"] == [{"name": "_JAVA_OPTIONS", "value": "-Xmx1073741824"}]
    assert qty(c["resources"]["limits"]["memory"]) == 1600 * 2**20


def test_a_pod_created_right_after_its_configmap_changed_gets_the_new_size(env):
    """The race of `kubectl apply` with a ConfigMap and its JobManager, or an edit followed by
    `kubectl rollout restart`: the ConfigMap is replaced and a pod is created at once, 50 times
    with a new size each time. Every pod must get the size the API server held when it was
    created (before: the cache answered with the size read up to 5 s earlier)."""
    ns = env["ns"]
    stale = []
    for i in range(50):
        mib = 1536 + 32 * i
        apply(ns, configmap("moving", {"flink-conf.yaml": f"jobmanager.memory.process.size: {mib}m\n"}))
        p = apply(ns, pod("m1", "flink:1.18.1", mounts=CONF_MOUNT, volumes=conf_volume("moving")),
                  "--dry-run=server", "-o", "json")
        got = qty(json.loads(p.stdout)["spec"]["containers"][0]["resources"]["limits"]["memory"])
        if got != mib * 2**20:
            stale.append((i, mib, got // 2**20))
    assert not stale, f"{len(stale)} of 50 pods sized from an older ConfigMap (round, MiB, got MiB): {stale[:10]}"


def test_api_client_speaks_http2_to_the_real_api_server(env):
    """pkg/kube's client (build/tests/kube-get, the library the webhook links) against the real
    kube-apiserver: the answer comes over HTTP/2, negotiated by ALPN, and a second request on
    the same client reuses what the first set up."""
    kube_get = os.environ.get("KUBE_GET", os.path.join(ROOT, "build", "tests", "kube-get"))
    p = subprocess.run([kube_get, "--kubeconfig", os.environ["KUBECONFIG"], "--path",
                        "/api/v1/namespaces/default/configmaps/kube-root-ca.crt", "--repeat", "2"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    answers = [json.loads(line) for line in p.stdout.splitlines()]
    assert [(a["err"], a["status"], a["proto"]) for a in answers] == [("OK", 200, "HTTP/2")] * 2, answers
    assert json.loads(answers[0]["body"])["data"]["ca.crt"].startswith("-----BEGIN CERTIFICATE-----")


def test_server_answers_like_the_cli_with_real_configmaps(env):
    """The same review through the API-backed server and through `flink-memory review` with the
    same ConfigMaps as files gives the same bytes."""
    ns = env["ns"]
    cm = configmap("same-bytes", {"flink-conf.yaml": "jobmanager.memory.flink.size: 1g\n"})
    apply(ns, cm)
    obj = pod("same", "flink:1.16.3", mounts=CONF_MOUNT, volumes=conf_volume("same-bytes"))
    obj["metadata"]["namespace"] = ns
    review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
              "request": {"uid": str(uuid.uuid4()), "kind": {"group": "", "version": "v1", "kind": "Pod"},
                          "resource": {"group": "", "version": "v1", "resource": "pods"},
                          "namespace": ns, "operation": "CREATE", "object": obj}}
    body = json.dumps(review).encode()
    import http.client
    ctx = ssl.create_default_context(cafile=os.path.join(env["dir"], "ca.crt"))
    conn = http.client.HTTPSConnection("127.0.0.1", env["webhook"].port, context=ctx, timeout=10)
    conn.request("POST", "/mutate?timeout=10s", body=body, headers={"Content-Type": "application/json"})
    server_bytes = conn.getresponse().read()
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        yaml.safe_dump(cm, f)
        f.flush()
        p = subprocess.run([CLI, "review", "--configmap", f.name], input=body, capture_output=True, timeout=30)
    assert p.returncode == 0
    assert p.stdout == server_bytes + b"\n"
    assert b"1472Mi" in base64.b64decode(json.loads(server_bytes)["response"]["patch"])


# Flink's docs, Kubernetes standalone session (1.18): the flink-config ConfigMap's flink-conf.yaml.
FLINK_DOCS_CONF = """jobmanager.rpc.address: flink-jobmanager
taskmanager.numberOfTaskSlots: 2
blob.server.port: 6124
jobmanager.rpc.port: 6123
taskmanager.rpc.port: 6122
jobmanager.memory.process.size: 1600m
taskmanager.memory.process.size: 1728m
parallelism.default: 2
"""
# What Flink 1.18.1's own BashJavaUtils prints for that file (GET_JM_RESOURCE_PARAMS and
# GET_TM_RESOURCE_PARAMS: the JVM flags, and the sizes of its dynamic-configs line). Each role's
# total process memory, in MiB, is the container's limit and request.
FLINK_DOCS_JM = {"totalProcess": "1600Mi", "heap": 1073741824, "offHeap": 134217728, "metaspace": 268435456,
                 "overhead": 201326592, "jvmArgs": "-Xmx1073741824 -Xms1073741824 -XX:MaxMetaspaceSize=268435456"}
FLINK_DOCS_TM = {"role": "taskmanager", "totalProcess": "1728Mi", "frameworkHeap": 134217728, "taskHeap": 402653174,
                 "frameworkOffHeap": 134217728, "taskOffHeap": 0, "network": 134217730, "managed": 536870920,
                 "metaspace": 268435456, "overhead": 201326592,
                 "jvmArgs": "-Xmx536870902 -Xms536870902 -XX:MaxDirectMemorySize=268435458 -XX:MaxMetaspaceSize=268435456"}
FLINK_DOCS_TM_HEAP, FLINK_DOCS_TM_DIRECT = 536870902, 268435458
# Flink 1.18.1's BashJavaUtils GET_TM_RESOURCE_PARAMS on taskmanager.memory.process.size: 1g with
# taskmanager.memory.managed.size: 2g: the exception's message, which the webhook prefixes with the
# container's name.
FLINK_TM_REJECTED = (
    "TaskManager memory configuration failed: Sum of configured Framework Heap Memory (128.000mb (134217728 bytes)), "
    "Framework Off-Heap Memory (128.000mb (134217728 bytes)), Task Off-Heap Memory (0 bytes), Managed Memory "
    "(2.000gb (2147483648 bytes)) and Network Memory (64.000mb (67108864 bytes)) exceed configured Total Flink "
    "Memory (576.000mb (603979776 bytes)).")
DOCS_VOLUME = [{"name": "flink-config-volume", "configMap": {"name": "flink-config", "items": [
    {"key": "flink-conf.yaml", "path": "flink-conf.yaml"}]}}]
DOCS_MOUNT = [{"name": "flink-config-volume", "mountPath": "/opt/flink/conf/"}]


def mib(n):
    return n * 2**20


def test_session_cluster_jobmanager_and_taskmanager_are_both_sized(env):
    """Flink's docs' session cluster, its JobManager and a TaskManager created as bare pods with
    hand-written limits: the API server stores each sized to its own role's total process memory,
    with the resolved annotation of its role."""
    ns = env["ns"]
    apply(ns, configmap("flink-config", {"flink-conf.yaml": FLINK_DOCS_CONF}))
    apply(ns, pod("session-jm", "flink:1.18.1", labels={"app": "flink-session", "component": "jobmanager"},
                  resources={"limits": {"memory": "2Gi"}}, mounts=DOCS_MOUNT, volumes=DOCS_VOLUME))
    p = apply(ns, tm_pod("session-tm", "flink:1.18.1", labels={"app": "flink-session", "component": "taskmanager"},
                         resources={"limits": {"memory": "1Gi"}}, mounts=DOCS_MOUNT, volumes=DOCS_VOLUME))
    assert "Warning: flink-memory-webhook: taskmanager: memory limit 1Gi -> 1728Mi (Flink 1.18)" in p.stderr, p.stderr
    jm_pod, tm = get(ns, "pod", "session-jm"), get(ns, "pod", "session-tm")
    c = jm_pod["spec"]["containers"][0]
    assert {k: qty(v["memory"]) for k, v in c["resources"].items()} == {"limits": mib(1600), "requests": mib(1600)}
    resolved = json.loads(jm_pod["metadata"]["annotations"][RESOLVED])
    assert {k: resolved.get(k) for k in FLINK_DOCS_JM} == FLINK_DOCS_JM
    assert "role" not in resolved or resolved["role"] == "jobmanager"
    c = tm["spec"]["containers"][0]
    assert c["name"] == "taskmanager" and c["args"] == ["taskmanager"]
    assert {k: qty(v["memory"]) for k, v in c["resources"].items()} == {"limits": mib(1728), "requests": mib(1728)}
    resolved = json.loads(tm["metadata"]["annotations"][RESOLVED])
    assert {k: resolved.get(k) for k in FLINK_DOCS_TM} == FLINK_DOCS_TM
    assert resolved["limit"] == resolved["request"] == "1728Mi"
    assert resolved["flinkVersion"] == "1.18" and resolved["source"] == "ConfigMap flink-config key flink-conf.yaml"
    # Nothing in the pod sets JVM flags: Flink's own reach the JVM, and no variable is added.
    assert "env" not in c


def test_taskmanager_deployment_pods_are_sized(env):
    """The docs' TaskManager Deployment (2 replicas), with a hand-written limit and a JVM flag in
    _JAVA_OPTIONS that would override Flink's direct memory: the Deployment is left as written
    (this suite's webhook runs with --workloads warn, the default), with warnings, and the pods
    the controller manager creates from it are sized. The Deployment carries its template's
    labels so that this suite's objectSelector sends it to the webhook."""
    ns = env["ns"]
    apply(ns, configmap("flink-config", {"flink-conf.yaml": FLINK_DOCS_CONF}))
    labels = {"app": "flink", "component": "taskmanager"}
    spec = tm_pod("x", "flink:1.18.1", resources={"limits": {"memory": "2Gi"}},
                  env=[{"name": "_JAVA_OPTIONS", "value": "-XX:MaxDirectMemorySize=1g"}],
                  mounts=DOCS_MOUNT, volumes=DOCS_VOLUME)["spec"]
    spec["containers"][0]["securityContext"] = {"runAsUser": 9999}  # the docs': user flink of the image
    dep = {"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "flink-taskmanager", "labels": labels},
           "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                    "template": {"metadata": {"labels": labels}, "spec": spec}}}
    p = apply(ns, dep)
    assert "Warning: flink-memory-webhook: taskmanager: pods will get memory limit 2Gi -> 1728Mi (Flink 1.18)" in \
        p.stderr, p.stderr
    assert (f"pods will get -XX:MaxDirectMemorySize in _JAVA_OPTIONS 1073741824 -> {FLINK_DOCS_TM_DIRECT}"
            in p.stderr), p.stderr
    deadline = time.time() + 60
    pods = []
    while time.time() < deadline:
        pods = json.loads(kubectl("get", "pods", "-n", ns, "-l", "app=flink,component=taskmanager", "-o",
                                  "json").stdout)["items"]
        if len(pods) >= 2:
            break
        time.sleep(0.5)
    assert len(pods) == 2, f"{len(pods)} TaskManager pods from the Deployment"
    for tm in pods:
        c = tm["spec"]["containers"][0]
        assert {k: qty(v["memory"]) for k, v in c["resources"].items()} == {"limits": mib(1728), "requests": mib(1728)}
        assert c["env"] == [{"name": "_JAVA_OPTIONS", "value": f"-XX:MaxDirectMemorySize={FLINK_DOCS_TM_DIRECT}"}]
        resolved = json.loads(tm["metadata"]["annotations"][RESOLVED])
        assert {k: resolved.get(k) for k in FLINK_DOCS_TM} == FLINK_DOCS_TM
    stored = get(ns, "deployment", "flink-taskmanager")["spec"]["template"]
    assert stored["spec"]["containers"][0]["resources"]["limits"]["memory"] == "2Gi"
    assert RESOLVED not in stored["metadata"].get("annotations", {})


def test_dry_run_server_previews_a_taskmanager_and_stores_nothing(env):
    ns = env["ns"]
    apply(ns, configmap("flink-config", {"flink-conf.yaml": FLINK_DOCS_CONF}))
    obj = tm_pod("tm-dry", "flink:1.18.1", env=[{"name": "_JAVA_OPTIONS", "value": "-Xmx4g"}],
                 resources={"limits": {"memory": "8Gi"}}, mounts=DOCS_MOUNT, volumes=DOCS_VOLUME)
    p = apply(ns, obj, "--dry-run=server", "-o", "yaml")
    shown = yaml.safe_load(p.stdout)
    c = shown["spec"]["containers"][0]
    assert {k: qty(v["memory"]) for k, v in c["resources"].items()} == {"limits": mib(1728), "requests": mib(1728)}
    assert c["env"] == [{"name": "_JAVA_OPTIONS", "value": f"-Xmx{FLINK_DOCS_TM_HEAP}"}]
    assert json.loads(shown["metadata"]["annotations"][RESOLVED])["role"] == "taskmanager"
    # The API server defaults a request unset beside a limit to the limit before it calls the webhook.
    for warning in ("memory limit 8Gi -> 1728Mi", "memory request 8Gi -> 1728Mi",
                    f"-Xmx in _JAVA_OPTIONS 4294967296 -> {FLINK_DOCS_TM_HEAP}"):
        assert f"Warning: flink-memory-webhook: taskmanager: {warning} (Flink 1.18)" in p.stderr, p.stderr
    assert kubectl("get", "-n", ns, "pod", "tm-dry", check=False).returncode != 0


def test_taskmanager_config_flink_rejects_is_denied_with_flinks_text(env):
    ns = env["ns"]
    apply(ns, configmap("tm-bad-conf", {"flink-conf.yaml":
          "taskmanager.memory.process.size: 1g\ntaskmanager.memory.managed.size: 2g\n"}))
    p = apply(ns, tm_pod("tm-bad", "flink:1.18.1", mounts=CONF_MOUNT, volumes=conf_volume("tm-bad-conf")), check=False)
    assert p.returncode != 0
    assert "denied the request: taskmanager: " + FLINK_TM_REJECTED in p.stderr, p.stderr
    assert kubectl("get", "-n", ns, "pod", "tm-bad", check=False).returncode != 0


SIZE_ENV = "FLINK_MEMORY_WEBHOOK_SIZE"


def with_annotations(obj, annotations):
    obj["metadata"]["annotations"] = annotations
    return obj


def test_from_limit_pod_is_stored_with_the_downward_api_size_and_needs_nothing_more(env):
    """A JobManager sized from its limit (README, "Sizing Flink from the pod"): the API server
    accepts the variable from the downward API and the -D, stores them, and the stored pod sent
    through the webhook again (as the API server's reinvocation would) gets nothing more. The
    flags are Flink 2.1.0's BashJavaUtils with -D jobmanager.memory.process.size=3221225472b
    (tests/data/admission/cases.yaml, from-limit-jobmanager-follows-its-limit)."""
    ns = env["ns"]
    apply(ns, configmap("sized-conf", {"config.yaml": "jobmanager:\n  memory:\n    process:\n      size: 2g\n"}))
    obj = with_annotations(pod("from-limit", "flink:2.1.0-java17", resources={"limits": {"memory": "3Gi"}},
                               env=[{"name": "_JAVA_OPTIONS", "value": "-Xmx2g -Dfile.encoding=UTF-8"}],
                               mounts=CONF_MOUNT, volumes=conf_volume("sized-conf")),
                           {"flink-memory-webhook/sizing": "from-limit"})
    p = apply(ns, obj)
    assert "gives way to the container's limit 3072Mi" in p.stderr, p.stderr
    stored = get(ns, "pod", "from-limit")
    c = stored["spec"]["containers"][0]
    assert c["args"] == ["jobmanager", "-D", f"jobmanager.memory.process.size=$({SIZE_ENV})b"]
    size_env = [e for e in c["env"] if e["name"] == SIZE_ENV]
    assert len(size_env) == 1
    ref = size_env[0]["valueFrom"]["resourceFieldRef"]
    assert ref["resource"] == "limits.memory" and ref["containerName"] == "jobmanager" and qty(ref["divisor"]) == 1
    assert {"name": "_JAVA_OPTIONS", "value": "-Dfile.encoding=UTF-8"} in c["env"]
    assert {k: qty(v["memory"]) for k, v in c["resources"].items()} == {"limits": 3 * 2**30, "requests": 3 * 2**30}
    resolved = json.loads(stored["metadata"]["annotations"][RESOLVED])
    assert resolved["sizing"] == "from-limit" and resolved["follows"] is True
    assert resolved["jvmArgs"] == "-Xmx2496449736 -Xms2496449736 -XX:MaxMetaspaceSize=268435456"
    # The stored pod, as the API server holds it, through the webhook again: nothing to change.
    again = {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": "from-limit-again", "labels": stored["metadata"]["labels"],
                          "annotations": stored["metadata"]["annotations"]},
             "spec": {"containers": [{k: c[k] for k in ("name", "image", "args", "env", "resources", "volumeMounts")
                                      if k in c}],
                      "volumes": [v for v in stored["spec"]["volumes"] if "configMap" in v]}}
    again["spec"]["containers"][0]["volumeMounts"] = CONF_MOUNT
    p = apply(ns, again, "--dry-run=server", "-o", "json")
    shown = json.loads(p.stdout)["spec"]["containers"][0]
    assert shown["args"] == c["args"] and shown["env"] == c["env"], (shown, c)
    assert "added" not in p.stderr and "removed" not in p.stderr, p.stderr


def test_from_limit_deployment_pods_follow_their_limit(env):
    """A TaskManager Deployment whose template asks for from-limit: the controller manager's pods
    carry the variable and the -D; the Deployment is left as written (workloads: warn)."""
    ns = env["ns"]
    apply(ns, configmap("flink-config", {"flink-conf.yaml": FLINK_DOCS_CONF}))
    labels = {"app": "flink-from-limit", "component": "taskmanager"}
    spec = tm_pod("x", "flink:1.18.1", resources={"limits": {"memory": "4Gi"}},
                  mounts=DOCS_MOUNT, volumes=DOCS_VOLUME)["spec"]
    dep = {"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "tm-from-limit", "labels": labels},
           "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                    "template": {"metadata": {"labels": labels,
                                              "annotations": {"flink-memory-webhook/sizing": "from-limit"}},
                                 "spec": spec}}}
    apply(ns, dep)
    deadline = time.time() + 60
    pods = []
    while time.time() < deadline:
        pods = json.loads(kubectl("get", "pods", "-n", ns, "-l", "app=flink-from-limit", "-o", "json").stdout)["items"]
        if pods:
            break
        time.sleep(0.5)
    assert pods, "the controller manager created no pod"
    c = pods[0]["spec"]["containers"][0]
    assert c["args"] == ["taskmanager", "-D", f"taskmanager.memory.process.size=$({SIZE_ENV})b"]
    assert [e["valueFrom"]["resourceFieldRef"]["resource"] for e in c["env"] if e["name"] == SIZE_ENV] == [
        "limits.memory"]
    assert {k: qty(v["memory"]) for k, v in c["resources"].items()} == {"limits": 4 * 2**30, "requests": 4 * 2**30}
    resolved = json.loads(pods[0]["metadata"]["annotations"][RESOLVED])
    assert resolved["role"] == "taskmanager" and resolved["totalProcess"] == "4096Mi"
    stored = get(ns, "deployment", "tm-from-limit")["spec"]["template"]["spec"]["containers"][0]
    assert stored["args"] == ["taskmanager"] and "env" not in stored


def test_from_limit_too_small_is_denied_with_the_smallest_size(env):
    ns = env["ns"]
    obj = with_annotations(pod("too-small", "flink:2.1.0", resources={"limits": {"memory": "256Mi"}}),
                           {"flink-memory-webhook/sizing": "from-limit"})
    p = apply(ns, obj, check=False)
    assert p.returncode != 0
    assert "the smallest that Flink accepts is 603979777 bytes, 577Mi rounded up" in p.stderr, p.stderr
    assert kubectl("get", "-n", ns, "pod", "too-small", check=False).returncode != 0


def test_stopped_webhook_follows_failure_policy(env):
    """Last: stops the webhook. Ignore lets pods through unchanged; Fail refuses them."""
    ns, mwc, wh = env["ns"], env["mwc"], env["webhook"]
    wh.kill()
    apply(ns, pod("unpatched", "flink:1.18.1", resources={"limits": {"memory": "3Gi"}}))
    c = get(ns, "pod", "unpatched")["spec"]["containers"][0]
    assert c["resources"]["limits"]["memory"] == "3Gi"
    kubectl("patch", "mutatingwebhookconfiguration", mwc, "--type=json", "-p",
            '[{"op":"replace","path":"/webhooks/0/failurePolicy","value":"Fail"}]')
    deadline = time.time() + 30
    while time.time() < deadline:
        p = apply(ns, pod("refused", "flink:1.18.1"), "--dry-run=server", check=False)
        if p.returncode != 0:
            assert "failed calling webhook" in p.stderr, p.stderr
            return
        time.sleep(0.5)
    raise AssertionError("failurePolicy Fail was not honoured")
