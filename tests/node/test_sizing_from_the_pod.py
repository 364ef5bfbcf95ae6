"""Sizing Flink from the pod on the real node (README: "Sizing Flink from the pod"): JobManagers
and TaskManagers annotated flink-memory-webhook/sizing: from-limit, with the chart's webhook, for
each Flink image (NODE_FLINK_VERSIONS), all at once.

- The VerticalPodAutoscaler, for real: its admission controller (built from its module by
  tests/node/vpa/build.sh, registered by itself as the cluster's webhook vpa-webhook-config, as
  its deployment does, but by URL since it runs on this host) and a VerticalPodAutoscaler
  object for the JobManager's Deployment, given a recommendation through its status
  subresource. Deleting the JobManager pod, the ReplicaSet's new pod carries the VPA's memory;
  the webhooks run in their order (the chart's configuration sorts before vpa-webhook-config)
  and the chart's, reinvocationPolicy IfNeeded, is called again after the VPA's change: its
  resolved annotation is of the VPA's size. The kubelet gives the container that size in
  FLINK_MEMORY_WEBHOOK_SIZE, Flink's JobManager reports it as its process size, and the JVM's
  heap and metaspace limits are Flink's for that size (flink-memory resolve --from-limit). A
  Deployment not sized from the pod gets Flink's configured size back over the VPA's. With the
  chart's reinvocationPolicy Never, the pod still follows the VPA's size but the webhook's
  annotation is of the written one. A recommendation Flink refuses makes the ReplicaSet's
  creation fail with Flink's message.
- In-place resize (the pod's resize subresource, resizePolicy RestartContainer for memory):
  a TaskManager of each session cluster resized up, then each JobManager up and then down. The
  kubelet restarts the container and evaluates the downward API variable again; the restarted
  JVM's limits are Flink's for the new size, and the TaskManager registers again reporting
  Flink's components for it (/taskmanagers memoryConfiguration).
"""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

# chart: the fixture; pytestmark: skipped without a node, as test_node.py is.
from test_node import (CHART, JM_NS, RELEASE, RESOLVED, VERSIONS, WEBHOOK_NS, chart,  # noqa: F401
                       chart_values, create, exec_, jobmanager, jvm_args_reference, pod_json, pytestmark,
                       reference_flags, rest_overview, running, taskmanager, vm_flags, wait_for_webhook)
from clusterlib import ROOT, helm, kubectl, qty, run, wait  # noqa: E402 (test_node puts tests/cluster on the path)

SIZING = {"flink-memory-webhook/sizing": "from-limit"}
SIZE_ENV = "FLINK_MEMORY_WEBHOOK_SIZE"
TOOLS = os.environ.get("FMW_TOOLS_DIR", os.path.join(ROOT, "build", "tools"))
VPA_BIN = os.path.join(TOOLS, "bin", "vpa-admission-controller")
VPA_CRD = os.path.join(TOOLS, "vpa", "vpa-v1-crd-gen.yaml")
VPA_WEBHOOK = "vpa-webhook-config"
LOGS = os.path.join(ROOT, "build", "node", "logs")
CLI = os.path.join(ROOT, "build", "bin", "flink-memory")

# The sizes the scenarios move through: what the pod is written with, the VPA's recommendation,
# one Flink refuses (below metaspace + the overhead's minimum), one while the chart's webhook is
# not called again, and the in-place resizes.
WRITTEN, RECOMMENDED, REFUSED, UNCHECKED = "2Gi", "3Gi", "300Mi", "2560Mi"
RESIZES = ["2560Mi", "1536Mi"]


@pytest.fixture
def made():
    """(kinds, name) of what a test creates, deleted when it ends, however it ends: a failed
    test leaves no JobManager of gigabytes running into the next."""
    objs = []
    yield objs
    for kinds, name in reversed(objs):
        kubectl("delete", kinds, name, "-n", JM_NS, "--ignore-not-found", "--wait=false", check=False)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serving_certificate(d):
    """A CA and a certificate for 127.0.0.1 signed by it, for the VPA's admission controller."""
    ca_key, ca, key, csr, crt = (os.path.join(d, n) for n in ("ca.key", "ca.crt", "tls.key", "tls.csr", "tls.crt"))
    run("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", ca_key)
    run("openssl", "req", "-x509", "-new", "-key", ca_key, "-subj", "/CN=vpa test CA", "-days", "1", "-out", ca)
    run("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key)
    run("openssl", "req", "-new", "-key", key, "-subj", "/CN=127.0.0.1", "-out", csr)
    ext = os.path.join(d, "ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-days", "1",
        "-extfile", ext, "-out", crt)
    return ca, crt, key


def remove_vpa():
    kubectl("delete", "mutatingwebhookconfiguration", VPA_WEBHOOK, "--ignore-not-found", check=False)
    kubectl("delete", "-f", VPA_CRD, "--ignore-not-found", "--timeout=60s", check=False)
    # Its status Lease (status.AdmissionControllerStatusName in its module).
    kubectl("delete", "lease", "-n", "default", "vpa-admission-controller", "--ignore-not-found", check=False)


@pytest.fixture(scope="module")
def vpa(chart):
    """The VPA's CRDs (from its module) and its admission controller, started on this host and
    registered by URL; all removed at the end, and first what a killed run left."""
    if not os.access(VPA_BIN, os.X_OK):
        pytest.fail(f"{VPA_BIN} is missing: tests/node/run.sh builds it (tests/node/vpa/build.sh)")
    remove_vpa()
    proc = None
    os.makedirs(LOGS, exist_ok=True)
    log = open(os.path.join(LOGS, "vpa-admission-controller.log"), "w")
    try:
        kubectl("apply", "--server-side", "-f", VPA_CRD)
        kubectl("wait", "--for=condition=Established", "--timeout=60s",
                "crd/verticalpodautoscalers.autoscaling.k8s.io")
        port = free_port()
        with tempfile.TemporaryDirectory() as d:
            ca, crt, key = serving_certificate(d)
            proc = subprocess.Popen(
                [VPA_BIN, "--kubeconfig", os.environ["KUBECONFIG"], "--client-ca-file", ca, "--tls-cert-file", crt,
                 "--tls-private-key", key, "--port", str(port), "--address", f"127.0.0.1:{free_port()}",
                 "--register-webhook=true", "--register-by-url=true", "--webhook-address=https://127.0.0.1",
                 f"--webhook-port={port}", "--webhook-timeout-seconds=10", "--status-lease-namespace=default",
                 f"--vpa-object-namespace={JM_NS}", "--v=2"],
                stdout=log, stderr=subprocess.STDOUT)

            def registered():
                if proc.poll() is not None:
                    raise AssertionError(f"the VPA's admission controller ended ({proc.returncode}); its log is"
                                         " build/node/logs/vpa-admission-controller.log")
                return kubectl("get", "mutatingwebhookconfiguration", VPA_WEBHOOK, check=False).returncode == 0
            # It registers itself 10 seconds after its start (webHookDelay in its main.go).
            wait("the VPA's admission controller registered", registered, timeout=90)
            time.sleep(2)   # the API server reads webhook configurations through an informer
            yield
    finally:
        if proc:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
        remove_vpa()


def conf_dir_of(cm):
    """The ConfigMap's files as the container sees them at /opt/flink/conf."""
    d = tempfile.mkdtemp(prefix="fmw-conf-")
    for name, text in cm["data"].items():
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    return d


def flinks_sizes(cm, v, limit, role="jobmanager"):
    """Flink's breakdown for a process of this ConfigMap whose container limit is `limit`, from
    the project's CLI (flink-memory resolve --from-limit, checked against Flink's jars by make
    oracle)."""
    d = conf_dir_of(cm)
    try:
        p = run(CLI, "resolve", "--conf-dir", d, "--flink-version", v, "--role", role, "--from-limit", limit,
                "--output", "json")
    finally:
        shutil.rmtree(d)
    r = json.loads(p.stdout)
    return {"heap": r.get("heap"), "metaspace": r["metaspace"], "offHeap": r.get("off_heap"), "jvmArgs": r["jvm_args"],
            "totalProcess": r["total_process"], "managed": r.get("managed"), "network": r.get("network")}


def flink_process_size(pod):
    """jobmanager.memory.process.size as the running JobManager reports it (/jobmanager/config)."""
    ip = pod["status"]["podIP"]
    p = run("curl", "-s", "--max-time", "3", f"http://{ip}:8081/jobmanager/config", check=False)
    try:
        entries = json.loads(p.stdout) if p.returncode == 0 else []
    except json.JSONDecodeError:
        return None
    return next((e["value"] for e in entries if e.get("key") == "jobmanager.memory.process.size"), None)


def running_since(name, restarts):
    """Pod `name` once its container runs after at least `restarts` restarts, else None."""
    pod = running(name)
    return pod if pod and pod["status"]["containerStatuses"][0].get("restartCount", 0) >= restarts else None


# The environment of the container's PID 1 (the JVM), read as its own user as jvm-flags.sh does:
# /proc/1/environ is readable only by the process's owner.
ENVIRON_AS_JVM = ('o=$(stat -c "%u %g" /proc/1); [ "$(id -u)" = "${o% *}" ] && exec cat /proc/1/environ; '
                  'exec setpriv --reuid="${o% *}" --regid="${o#* }" --clear-groups cat /proc/1/environ')


def process_env(name):
    """The JVM's own environment: what the kubelet and Flink's scripts gave the process."""
    out = exec_(name, "sh", "-c", ENVIRON_AS_JVM)
    return dict(e.split("=", 1) for e in out.split("\0") if "=" in e)


def check_follows(name, cm, v, size, restarts=0):
    """The running container of pod `name` at `size`: its cgroup limit, the variable the kubelet
    gave it, Flink's own process size, and the JVM's limits Flink's for that size."""
    want = qty(size)
    pod = wait(f"{name} Running at {size}", lambda: running_since(name, restarts))
    wait(f"{name}'s REST /overview", lambda: rest_overview(running(name)), timeout=180)
    pod = running(name)
    assert pod["status"]["containerStatuses"][0].get("restartCount", 0) == restarts, pod["status"]
    assert qty(pod["spec"]["containers"][0]["resources"]["limits"]["memory"]) == want
    assert int(exec_(name, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes").strip()) == want
    assert process_env(name).get(SIZE_ENV) == str(want)
    assert flink_process_size(pod) == f"{want}b"
    sizes = flinks_sizes(cm, v, size)
    flags, on = vm_flags(name)
    gc = next(g for g in ("UseSerialGC", "UseG1GC", "UseParallelGC", "UseZGC", "UseShenandoahGC") if g in on)
    ref = reference_flags(sizes, gc)
    assert flags["MaxHeapSize"] == ref["MaxHeapSize"], (flags, sizes)
    assert flags["MaxMetaspaceSize"] == ref["MaxMetaspaceSize"], (flags, sizes)
    print(f"{name}: limit {size} = cgroup = {SIZE_ENV} {want} = Flink's process size; MaxHeapSize"
          f" {flags['MaxHeapSize']} (Flink's heap {sizes['heap']}), MaxMetaspaceSize {flags['MaxMetaspaceSize']}")
    return pod


def with_resize_policy(pod):
    pod["spec"]["containers"][0]["resizePolicy"] = [{"resourceName": "memory", "restartPolicy": "RestartContainer"},
                                                    {"resourceName": "cpu", "restartPolicy": "NotRequired"}]
    return pod


def deployment(name, v, annotations=SIZING):
    """A JobManager Deployment of Flink's docs' session layout, sized from its limit, and a
    VerticalPodAutoscaler for it that applies its recommendation when a pod is created."""
    cm, pod = jobmanager(name, v, "session", limit=WRITTEN, annotations=annotations, restart="Always")
    labels = dict(pod["metadata"]["labels"], deployment=name)
    template = {"metadata": {"labels": labels, "annotations": pod["metadata"]["annotations"]},
                "spec": with_resize_policy(pod)["spec"]}
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
           "spec": {"replicas": 1, "strategy": {"type": "Recreate"}, "selector": {"matchLabels": {"deployment": name}},
                    "template": template}}
    vpa_obj = {"apiVersion": "autoscaling.k8s.io/v1", "kind": "VerticalPodAutoscaler", "metadata": {"name": name},
               "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                        "updatePolicy": {"updateMode": "Initial"},
                        "resourcePolicy": {"containerPolicies": [{"containerName": "jobmanager",
                                                                  "controlledResources": ["memory"]}]}}}
    return cm, dep, vpa_obj


def the_pod(dep):
    items = json.loads(kubectl("get", "pods", "-n", JM_NS, "-l", f"deployment={dep}", "-o", "json").stdout)["items"]
    live = [p for p in items if not p["metadata"].get("deletionTimestamp")]
    return live[0] if len(live) == 1 else None


def recommend(name, memory):
    """The VPA's recommendation, written as its recommender would: through the status subresource."""
    target = {"memory": memory}
    rec = {"status": {"recommendation": {"containerRecommendations": [
        {"containerName": "jobmanager", "target": target, "lowerBound": target, "upperBound": target,
         "uncappedTarget": target}]}}}
    kubectl("patch", "verticalpodautoscaler", name, "-n", JM_NS, "--subresource", "status", "--type", "merge",
            "-p", json.dumps(rec))


def reinvocation_policies():
    cfg = json.loads(kubectl("get", "mutatingwebhookconfigurations", "-o", "json").stdout)["items"]
    return {w.get("reinvocationPolicy", "Never") for c in cfg if c["metadata"]["name"].startswith(RELEASE)
            for w in c["webhooks"]}


def new_pod(dep, old):
    def other():
        pod = the_pod(dep)
        return pod if pod and pod["metadata"]["name"] != old else None
    return wait(f"{dep}'s new pod", other)


def test_vpa_recommendation_is_flinks_process_size(vpa, made):
    # The order the API server calls them in: by their configurations' names.
    names = sorted(c["metadata"]["name"] for c in json.loads(
        kubectl("get", "mutatingwebhookconfigurations", "-o", "json").stdout)["items"])
    assert names.index(VPA_WEBHOOK) > max(i for i, n in enumerate(names) if n.startswith(RELEASE)), names
    assert reinvocation_policies() == {"IfNeeded"}
    cases = {}
    for v in VERSIONS:
        name = f"vpa-{v.replace('.', '-')}"
        cm, dep, vpa_obj = deployment(name, v)
        made.append(("deployment,verticalpodautoscaler", name))
        made.append(("configmap", cm["metadata"]["name"]))
        create(cm, dep, vpa_obj)
        cases[name] = (cm, v)
    # The same, not sized from the pod: Flink's configuration sizes it, the VPA's memory gives way.
    config_sized = "vpa-config-sized"
    cm, dep, vpa_obj = deployment(config_sized, VERSIONS[0], annotations={})
    made.append(("deployment,verticalpodautoscaler", config_sized))
    made.append(("configmap", cm["metadata"]["name"]))
    create(cm, dep, vpa_obj)
    first = {}
    for name, (cm, v) in cases.items():
        pod = wait(f"{name}'s pod", lambda: the_pod(name))
        first[name] = check_follows(pod["metadata"]["name"], cm, v, WRITTEN)["metadata"]["name"]
        # No recommendation yet: the VPA's admission controller left the pod as written.
        assert "vpaUpdates" not in pod["metadata"].get("annotations", {}), pod["metadata"]["annotations"]
    configured = wait(f"{config_sized}'s pod", lambda: the_pod(config_sized))
    flinks = configured["spec"]["containers"][0]["resources"]["limits"]["memory"]
    assert qty(flinks) == qty(json.loads(configured["metadata"]["annotations"][RESOLVED])["totalProcess"])
    for name in [*cases, config_sized]:
        recommend(name, RECOMMENDED)
    time.sleep(3)   # the VPA's admission controller sees the status through its informer
    for name in cases:
        kubectl("delete", "pod", "-n", JM_NS, first[name], "--wait=false")
    kubectl("delete", "pod", "-n", JM_NS, configured["metadata"]["name"], "--wait=false")
    pod = new_pod(config_sized, configured["metadata"]["name"])
    assert "memory request" in pod["metadata"]["annotations"].get("vpaUpdates", ""), pod["metadata"]
    res = pod["spec"]["containers"][0]["resources"]
    assert qty(res["limits"]["memory"]) == qty(flinks) == qty(res["requests"]["memory"]), res
    print(f"{config_sized}: sized from its configuration, the VPA's {RECOMMENDED} gave way to Flink's {flinks}")
    kubectl("delete", "deployment,verticalpodautoscaler", config_sized, "-n", JM_NS, "--wait=false")
    for name, (cm, v) in cases.items():
        pod = new_pod(name, first[name])
        ann = pod["metadata"]["annotations"]
        assert "memory request" in ann.get("vpaUpdates", ""), ann
        res = pod["spec"]["containers"][0]["resources"]
        assert qty(res["requests"]["memory"]) == qty(RECOMMENDED) == qty(res["limits"]["memory"]), res
        # The chart's webhook ran again after the VPA's: its annotation is of the VPA's size.
        assert qty(json.loads(ann[RESOLVED])["limit"]) == qty(RECOMMENDED), ann[RESOLVED]
        check_follows(pod["metadata"]["name"], cm, v, RECOMMENDED)

    # With reinvocationPolicy Never the chart's webhook sees the pod only before the VPA's change:
    # the container still follows the VPA's size (the variable is the kubelet's), but what the
    # webhook checked and wrote in its annotation is the size the pod was written with.
    name = next(iter(cases))
    cm, v = cases[name]
    helm("upgrade", RELEASE, CHART, "-n", WEBHOOK_NS, *chart_values("--set", "webhook.reinvocationPolicy=Never"),
         "--wait", "--timeout", "180s")
    try:
        wait_for_webhook()
        assert reinvocation_policies() == {"Never"}
        time.sleep(2)   # the API server reads webhook configurations through an informer
        recommend(name, UNCHECKED)
        time.sleep(3)
        old = the_pod(name)["metadata"]["name"]
        kubectl("delete", "pod", "-n", JM_NS, old, "--wait=false")
        pod = new_pod(name, old)
        assert qty(json.loads(pod["metadata"]["annotations"][RESOLVED])["limit"]) == qty(WRITTEN)
        check_follows(pod["metadata"]["name"], cm, v, UNCHECKED)
    finally:
        helm("upgrade", RELEASE, CHART, "-n", WEBHOOK_NS, *chart_values(), "--wait", "--timeout", "180s")
        wait_for_webhook()
    assert reinvocation_policies() == {"IfNeeded"}
    time.sleep(2)

    # A recommendation Flink refuses: the ReplicaSet's pod is denied with Flink's message.
    recommend(name, REFUSED)
    time.sleep(3)
    kubectl("delete", "pod", "-n", JM_NS, the_pod(name)["metadata"]["name"], "--wait=false")

    def refused():
        events = json.loads(kubectl("get", "events", "-n", JM_NS, "--field-selector", "reason=FailedCreate",
                                    "-o", "json").stdout)["items"]
        return next((e["message"] for e in events if e["involvedObject"]["name"].startswith(name + "-")
                     and "smallest that Flink accepts" in e["message"]), None)
    message = wait(f"{name}'s ReplicaSet refused a pod of {REFUSED}", refused, timeout=90)
    assert "exceed configured Total Process Memory" in message, message
    print(f"{name} at {REFUSED}: {message}")
    for name in cases:
        kubectl("delete", "deployment,verticalpodautoscaler", name, "-n", JM_NS, "--wait=false")


def resize(name, size, container="jobmanager"):
    body = {"spec": {"containers": [{"name": container, "resources": {"requests": {"memory": size},
                                                                         "limits": {"memory": size}}}]}}
    kubectl("patch", "pod", name, "-n", JM_NS, "--subresource", "resize", "--type", "strategic",
            "-p", json.dumps(body))


def tm_registration(jm_ip, tm_ip, total):
    """The JobManager's /taskmanagers entry of the TaskManager at tm_ip that reports `total` as
    its total process memory (a restarted TaskManager registers again from the same address)."""
    p = run("curl", "-s", "--max-time", "3", f"http://{jm_ip}:8081/taskmanagers", check=False)
    try:
        tms = json.loads(p.stdout).get("taskmanagers", []) if p.returncode == 0 else []
    except json.JSONDecodeError:
        return None
    return next((t for t in tms if tm_ip in t.get("path", "") + t.get("id", "")
                 and (t.get("memoryConfiguration") or {}).get("totalProcessMemory") == total), None)


def check_tm_follows(name, cm, v, jm_ip, size, restarts=0):
    """The TaskManager of pod `name` at `size`: registered with its JobManager reporting Flink's
    components for that size, its cgroup and variable, and its JVM's limits Flink's flags."""
    want = qty(size)
    pod = wait(f"{name} Running at {size}", lambda: running_since(name, restarts))
    sizes = flinks_sizes(cm, v, size, role="taskmanager")
    tm = wait(f"{name} registered at {size}", lambda: tm_registration(jm_ip, pod["status"]["podIP"], want),
              timeout=180)
    pod = running(name)
    assert pod["status"]["containerStatuses"][0].get("restartCount", 0) == restarts, pod["status"]
    mem = tm["memoryConfiguration"]
    assert mem["managedMemory"] == sizes["managed"] and mem["networkMemory"] == sizes["network"], (mem, sizes)
    assert int(exec_(name, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes").strip()) == want
    assert process_env(name).get(SIZE_ENV) == str(want)
    flags, on = vm_flags(name)
    gc = next(g for g in ("UseSerialGC", "UseG1GC", "UseParallelGC", "UseZGC", "UseShenandoahGC") if g in on)
    ref = jvm_args_reference(sizes, gc)
    for flag in ("MaxHeapSize", "MaxDirectMemorySize", "MaxMetaspaceSize"):
        assert flags[flag] == ref[flag], (flag, flags, sizes)
    print(f"{name}: limit {size} = cgroup = {SIZE_ENV} = the totalProcessMemory it registered with; managed"
          f" {mem['managedMemory']}, network {mem['networkMemory']}; MaxHeapSize {flags['MaxHeapSize']}"
          f" MaxDirectMemorySize {flags['MaxDirectMemorySize']}")


def test_in_place_resize_restarts_the_jvm_at_the_new_size(chart, made):
    pods = {}
    for v in VERSIONS:
        name = f"resize-{v.replace('.', '-')}"
        cm, pod = jobmanager(name, v, "session", limit=WRITTEN, annotations=SIZING, restart="Always")
        made += [("pod", name), ("configmap", cm["metadata"]["name"])]
        create(cm, with_resize_policy(pod))
        pods[name] = (cm, v)
    for name, (cm, v) in pods.items():
        check_follows(name, cm, v, WRITTEN)

    # A TaskManager of each session cluster, resized up while its JobManager runs: it restarts,
    # registers again, and reports Flink's components for its new limit.
    tms = {}
    for name, (_, v) in pods.items():
        jm_ip = pod_json(name)["status"]["podIP"]
        cm, pod = taskmanager(f"{name}-tm", v, jm_ip, limit=WRITTEN, annotations=SIZING)
        pod["spec"]["restartPolicy"] = "Always"
        made += [("pod", pod["metadata"]["name"]), ("configmap", cm["metadata"]["name"])]
        create(cm, with_resize_policy(pod))
        tms[pod["metadata"]["name"]] = (cm, v, jm_ip)
    for name, (cm, v, jm_ip) in tms.items():
        check_tm_follows(name, cm, v, jm_ip, WRITTEN)
    for name in tms:
        resize(name, RESIZES[0], container="taskmanager")
    for name, (cm, v, jm_ip) in tms.items():
        check_tm_follows(name, cm, v, jm_ip, RESIZES[0], restarts=1)
    for name in tms:
        kubectl("delete", "pod", name, "-n", JM_NS, "--wait=false")

    for restarts, size in enumerate(RESIZES, start=1):
        for name in pods:
            resize(name, size)
        for name, (cm, v) in pods.items():
            def resized():
                st = pod_json(name)["status"]["containerStatuses"][0]
                return st.get("restartCount", 0) >= restarts and "running" in st.get("state", {}) and \
                    qty(st.get("resources", {}).get("limits", {}).get("memory", "0")) == qty(size)
            wait(f"{name} restarted at {size}", resized, timeout=120)
            check_follows(name, cm, v, size, restarts=restarts)
    for name in pods:
        kubectl("delete", "pod", name, "-n", JM_NS, "--wait=false")
