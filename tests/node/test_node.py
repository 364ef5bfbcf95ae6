"""The node suite: the chart's own pods and real Flink JobManagers on a real node (tests/node).

Runs under tests/node/run.sh (the control plane and the node up, build/cluster/env and
build/node/env sourced, the images imported). What it shows, from the running containers:

- the chart installs as a user installs it (its image from make image, tls.mode=generate, no
  webhook.url): two replicas Ready through their probes, the API server calling them through the
  chart's Service, the PodDisruptionBudget and restricted Pod Security holding;
- for each Flink image (NODE_FLINK_VERSIONS) and each layout (Flink's docs' session cluster with
  its ConfigMap at /opt/flink/conf, application mode with its job, a custom command whose
  _JAVA_OPTIONS asks for another heap): the container's cgroup limit equals the pod's limit,
  which equals Flink's total process memory; the JVM's MaxHeapSize, MaxMetaspaceSize and
  MaxDirectMemorySize (jcmd VM.flags) equal what the same JDK gives Flink's flags; the JobManager
  answers /overview;
- a JobManager whose heap is filled (tests/node/java/Fill.java) stays under its limit, while the
  same pod with the webhook off and its conflicting -Xmx is OOMKilled (exit 137);
- for each Flink image, a TaskManager of Flink's docs' session cluster (args taskmanager, the
  ConfigMap at /opt/flink/conf) registered with the session JobManager: its cgroup limit is
  Flink's total process memory and its JVM's heap, direct memory and metaspace limits are
  Flink's; with its direct memory and heap filled it stays under the limit, while its twin with
  the webhook off and _JAVA_OPTIONS=-Xmx2g is OOMKilled;
- a helm upgrade that renews the serving certificate and rolls the webhook's pods while
  JobManager pods are being created, with failurePolicy Fail: no admission request fails.
"""
import http.client
import json
import os
import re
import ssl
import sys
import threading
import time
import uuid

import pytest
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "cluster"))
from clusterlib import CHART, RESOLVED, ROOT, get, helm, kubectl, qty, run, wait  # noqa: E402

IMAGES = os.path.join(ROOT, "build", "node-images")
VERSIONS = os.environ.get("NODE_FLINK_VERSIONS", "1.18.1 2.1.0").split()
RELEASE, WEBHOOK_NS = "fmw", "flink-memory-webhook"
JM_NS = "fmw-node-" + uuid.uuid4().hex[:6]

pytestmark = pytest.mark.skipif("FMW_NODE_NAME" not in os.environ,
                                reason="no node: run through make node (tests/node/run.sh)")


def version():
    return run("make", "-s", "-C", ROOT, "--no-print-directory", "print-version").stdout.strip()


def chart_values(*extra):
    return ["--set", "image.repository=localhost/flink-memory-webhook", "--set", f"image.tag={version()}",
            "--set", "image.pullPolicy=Never", "--set", "tls.mode=generate", *extra]


@pytest.fixture(scope="module")
def chart():
    """helm install as a user does, into a namespace that enforces restricted Pod Security;
    uninstalled at the end."""
    kubectl("create", "namespace", WEBHOOK_NS)
    kubectl("label", "namespace", WEBHOOK_NS, "pod-security.kubernetes.io/enforce=restricted")
    helm("install", RELEASE, CHART, "-n", WEBHOOK_NS, *chart_values(), "--wait", "--timeout", "180s")
    kubectl("create", "namespace", JM_NS)
    try:
        wait_for_webhook()
        yield
    finally:
        kubectl("delete", "namespace", JM_NS, "--timeout=120s", check=False)
        helm("uninstall", RELEASE, "-n", WEBHOOK_NS, "--wait", "--timeout", "120s", check=False)
        kubectl("delete", "namespace", WEBHOOK_NS, "--timeout=120s", check=False)


def probe_pod(name="probe"):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"component": "jobmanager"}},
            "spec": {"containers": [{"name": "jobmanager", "image": f"localhost/flink:{VERSIONS[0]}",
                                     "args": ["jobmanager"]}]}}


def wait_for_webhook():
    def called():
        p = kubectl("create", "--dry-run=server", "-n", JM_NS, "-o", "json", "-f", "-",
                    input=json.dumps(probe_pod()), check=False)
        return p.returncode == 0 and RESOLVED in json.loads(p.stdout)["metadata"].get("annotations", {})
    wait("the API server calling the chart's webhook", called, timeout=60)


def webhook_pods():
    return json.loads(kubectl("get", "pods", "-n", WEBHOOK_NS, "-o", "json").stdout)["items"]


def test_node_is_ready_with_the_control_planes_version():
    node = get("", "node", os.environ["FMW_NODE_NAME"])
    ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}
    assert ready["Ready"] == "True", node["status"]["conditions"]
    server = json.loads(kubectl("version", "-o", "json").stdout)["serverVersion"]["gitVersion"]
    assert node["status"]["nodeInfo"]["kubeletVersion"] == server
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://")
    addresses = {a["type"]: a["address"] for a in node["status"]["addresses"]}
    assert addresses["InternalIP"] == os.environ["FMW_NODE_IP"]


def test_chart_pods_serve_admission_through_the_service(chart):
    pods = webhook_pods()
    assert len(pods) == 2, [p["metadata"]["name"] for p in pods]
    for p in pods:
        assert p["spec"]["nodeName"] == os.environ["FMW_NODE_NAME"]
        assert {c["type"]: c["status"] for c in p["status"]["conditions"]}["Ready"] == "True"
        c = p["spec"]["containers"][0]
        assert c["image"] == f"localhost/flink-memory-webhook:{version()}"
        assert p["spec"]["securityContext"]["runAsNonRoot"] is True
    ns = get("", "namespace", WEBHOOK_NS)
    assert ns["metadata"]["labels"].get("pod-security.kubernetes.io/enforce") == "restricted"
    cfg = json.loads(kubectl("get", "mutatingwebhookconfigurations", "-o", "json").stdout)["items"]
    hooks = [w for c in cfg for w in c["webhooks"] if c["metadata"]["name"].startswith(RELEASE)]
    assert hooks and all("service" in w["clientConfig"] and "url" not in w["clientConfig"] for w in hooks)
    slices = json.loads(kubectl("get", "endpointslices", "-n", WEBHOOK_NS, "-o", "json").stdout)["items"]
    ready = {a for s in slices for e in s["endpoints"] if e["conditions"].get("ready")
             for a in e["addresses"]}
    assert ready == {p["status"]["podIP"] for p in pods}
    pdb = json.loads(kubectl("get", "pdb", "-n", WEBHOOK_NS, "-o", "json").stdout)["items"]
    assert pdb and pdb[0]["status"]["currentHealthy"] == 2 and pdb[0]["status"]["disruptionsAllowed"] >= 1
    # A pod that restricted Pod Security refuses is refused in the chart's namespace.
    bad = probe_pod("privileged")
    bad["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    p = kubectl("create", "--dry-run=server", "-n", WEBHOOK_NS, "-f", "-", input=json.dumps(bad), check=False)
    assert p.returncode != 0 and "restricted" in p.stderr, p.stderr


# ---- JobManagers ----

def conf_file(v):
    """The conf file the release reads: flink-conf.yaml up to 1.18, config.yaml from 2.0."""
    return "flink-conf.yaml" if int(v.split(".")[0]) < 2 else "config.yaml"


def conf_text(v, options):
    """The release's own default conf file (as the image has it) with these options set: what a
    user writes into the ConfigMap after copying the distribution's file (it carries the
    --add-opens that Flink needs on Java 17). flink-conf.yaml line by line; config.yaml as YAML,
    each dotted key set at its nested place."""
    with open(os.path.join(IMAGES, f"flink-{v}", "rootfs", "opt", "flink", "conf", conf_file(v))) as f:
        text = f.read()
    if conf_file(v) == "flink-conf.yaml":
        keep = [line for line in text.splitlines()
                if line.split(":", 1)[0].strip() not in options]
        return "\n".join(keep + [f"{k}: {val}" for k, val in options.items()]) + "\n"
    doc = yaml.safe_load(text) or {}
    for k, val in options.items():
        node, parts = doc, k.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = val
    return yaml.safe_dump(doc, default_flow_style=False, sort_keys=False)


LOG4J = """rootLogger.level = INFO
rootLogger.appenderRef.console.ref = ConsoleAppender
appender.console.name = ConsoleAppender
appender.console.type = CONSOLE
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss,SSS} %-5p %-60c %x - %m%n
"""


def add_fill_agent(container, volumes):
    """tests/node/java/Fill.java as a Java agent of the container's JVM (JAVA_TOOL_OPTIONS)."""
    container["volumeMounts"].append({"name": "fill", "mountPath": "/fmw/fill.jar"})
    volumes.append({"name": "fill", "hostPath": {"path": os.path.join(IMAGES, "fill.jar"), "type": "File"}})
    container["env"].append({"name": "JAVA_TOOL_OPTIONS", "value": "-javaagent:/fmw/fill.jar"})


def jobmanager(name, v, layout, limit="2Gi", process="1000m", annotations=None, env=None,
               fill=False, restart="Never"):
    """A ConfigMap and a JobManager pod of one layout, as Flink's docs write them. No cluster DNS
    runs here: the JobManager's Service name flink-jobmanager is given to the pod as a host
    alias instead (the docs' ConfigMap names it as jobmanager.rpc.address)."""
    conf = {"jobmanager.rpc.address": "flink-jobmanager", "jobmanager.rpc.port": "6123",
            "blob.server.port": "6124", "taskmanager.numberOfTaskSlots": "2",
            "jobmanager.memory.process.size": process, "parallelism.default": "1"}
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name + "-conf"},
          "data": {conf_file(v): conf_text(v, conf), "log4j-console.properties": LOG4J}}
    container = {"name": "jobmanager", "image": f"localhost/flink:{v}", "imagePullPolicy": "Never",
                 "ports": [{"containerPort": 6123}, {"containerPort": 8081}],
                 "resources": {"limits": {"memory": limit}, "requests": {"memory": limit, "cpu": "100m"}},
                 "volumeMounts": [{"name": "conf", "mountPath": "/opt/flink/conf"}], "env": list(env or [])}
    volumes = [{"name": "conf", "configMap": {"name": name + "-conf"}}]
    if layout == "session":          # Flink's docs, "Kubernetes Setup": session cluster
        container["args"] = ["jobmanager"]
    elif layout == "application":    # Flink's docs: application cluster, the job in usrlib
        container["args"] = ["standalone-job", "--job-classname", "com.example.StreamingJob"]
        container["volumeMounts"].append({"name": "job", "mountPath": "/opt/flink/usrlib/job.jar"})
        volumes.append({"name": "job", "hostPath": {"path": os.path.join(IMAGES, f"job-{v}.jar"), "type": "File"}})
    elif layout == "custom":         # a command of one's own, and a JVM option in the environment
        container["command"] = ["/opt/flink/bin/jobmanager.sh", "start-foreground"]
        container["env"].append({"name": "_JAVA_OPTIONS", "value": "-Xmx2g"})
    else:
        raise ValueError(layout)
    if fill:
        add_fill_agent(container, volumes)
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "labels": {"app": "flink", "component": "jobmanager"},
                        "annotations": dict(annotations or {})},
           "spec": {"containers": [container], "volumes": volumes, "restartPolicy": restart,
                    "hostAliases": [{"ip": "127.0.0.1", "hostnames": ["flink-jobmanager"]}],
                    "terminationGracePeriodSeconds": 5}}
    return cm, pod


def create(*objs):
    kubectl("apply", "-n", JM_NS, "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                "items": list(objs)}))


def pod_json(name):
    return get(JM_NS, "pod", name)


def running(name):
    p = pod_json(name)
    st = (p["status"].get("containerStatuses") or [{}])[0]
    if "terminated" in st.get("state", {}):
        logs = kubectl("logs", "-n", JM_NS, name, "--tail", "30", check=False).stdout
        raise AssertionError(f"{name} ended: {st['state']['terminated']}\n{logs}")
    return p if "running" in st.get("state", {}) else None


def rest_overview(pod):
    """The JobManager's /overview from this host (on the pods' bridge), or None (not yet up)."""
    if not pod:
        return None
    ip = pod["status"]["podIP"]
    p = run("curl", "-s", "--max-time", "3", f"http://{ip}:8081/overview", check=False)
    try:
        body = json.loads(p.stdout) if p.returncode == 0 else {}
    except json.JSONDecodeError:
        return None
    # Before its leader election the REST endpoint answers {"errors": [...]}.
    return body if "flink-version" in body else None


def exec_(name, *cmd):
    return kubectl("exec", "-n", JM_NS, name, "--", *cmd).stdout


# The flags of the container's JVM, as its own user (the script says how).
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "jvm-flags.sh")) as f:
    JCMD_AS_JVM = f.read()


def vm_flags(name):
    """The JobManager JVM's flags, from jcmd inside the container (the JVM is PID 1), run as the
    JVM's own user (the attach mechanism wants the same uid: flink after the entrypoint, root when
    a command of one's own starts the JVM, the pod's runAsUser when it sets one)."""
    out = exec_(name, "sh", "-c", JCMD_AS_JVM)
    return dict(re.findall(r"-XX:([A-Za-z0-9]+)=(\S+)", out)), set(re.findall(r"-XX:\+([A-Za-z0-9]+)", out))


def reference_flags(ann, gc):
    """What this machine's JDK (the one the images' runtime was made from) shows for exactly
    Flink's flags, with the GC the container's JVM chose: the JVM's own rounding on both sides."""
    args = ["java", f"-XX:+{gc}", "-Xmx%d" % ann["heap"], "-Xms%d" % ann["heap"],
            "-XX:MaxMetaspaceSize=%d" % ann["metaspace"]]
    if "-XX:MaxDirectMemorySize" in (ann.get("jvmArgs") or ""):
        args.append("-XX:MaxDirectMemorySize=%d" % ann["offHeap"])
    out = run(*args, "-XX:+PrintFlagsFinal", "-version").stdout
    return {m.group(1): m.group(2) for m in re.finditer(r"^\s*\S+\s+(\w+)\s+=\s+(\S+)", out, re.M)}


LAYOUTS = ["session", "application", "custom"]
CASES = [(v, layout) for v in VERSIONS for layout in LAYOUTS]


@pytest.fixture(scope="module")
def started(chart):
    """Every layout of every Flink image, started at once; each test below looks at one."""
    names = {}
    for v, layout in CASES:
        name = f"jm-{layout}-{v.replace('.', '-')}"
        create(*jobmanager(name, v, layout))
        names[(v, layout)] = name
    return names


@pytest.mark.parametrize("v,layout", CASES)
def test_jobmanager_runs_at_flinks_size(started, v, layout):
    name = started[(v, layout)]
    pod = wait(f"{name} Running", lambda: running(name))
    ann = json.loads(pod["metadata"]["annotations"][RESOLVED])
    limits = pod["spec"]["containers"][0]["resources"]["limits"]
    total = qty(ann["totalProcess"])
    # The pod's limit is Flink's total process memory (the user wrote 2Gi).
    assert qty(limits["memory"]) == total, (limits, ann)
    assert qty(ann["limit"]) == total
    overview = wait(f"{name}'s REST /overview", lambda: rest_overview(running(name)), timeout=180)
    assert overview.get("flink-version") == v, overview
    # The container's own cgroup says the same.
    cg = int(exec_(name, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes").strip())
    assert cg == total
    flags, on = vm_flags(name)
    gc = next(g for g in ("UseSerialGC", "UseG1GC", "UseParallelGC", "UseZGC", "UseShenandoahGC") if g in on)
    ref = reference_flags(ann, gc)
    assert flags["MaxHeapSize"] == ref["MaxHeapSize"], (flags, ann)
    assert flags["MaxMetaspaceSize"] == ref["MaxMetaspaceSize"], (flags, ann)
    if "MaxDirectMemorySize" in flags or "-XX:MaxDirectMemorySize" in (ann.get("jvmArgs") or ""):
        assert flags["MaxDirectMemorySize"] == ref["MaxDirectMemorySize"], (flags, ann)
    print(f"{name}: limit {limits['memory']} = cgroup {cg} = totalProcess; MaxHeapSize {flags['MaxHeapSize']}"
          f" MaxMetaspaceSize {flags['MaxMetaspaceSize']} ({gc}); /overview flink-version {overview['flink-version']}")


def filled(name, what):
    """Waits for the Fill agent's line in pod `name`, then reads what it left: the line, the
    resolved annotation, the cgroup's peak and limit, and the heap held (MiB). The container
    must not have restarted."""
    done = wait(f"{name}'s {what} filled",
                lambda: kubectl("exec", "-n", JM_NS, name, "--", "cat", "/tmp/fmw-fill.done", check=False).stdout,
                timeout=120)
    time.sleep(3)
    p = running(name)
    assert p["status"]["containerStatuses"][0]["restartCount"] == 0
    ann = json.loads(p["metadata"]["annotations"][RESOLVED])
    peak = int(exec_(name, "cat", "/sys/fs/cgroup/memory/memory.max_usage_in_bytes").strip())
    limit = qty(p["spec"]["containers"][0]["resources"]["limits"]["memory"])
    held = int(re.search(r"held (\d+) MiB", done).group(1))
    return done, ann, peak, limit, held


@pytest.mark.parametrize("v", VERSIONS)
def test_filled_heap_fits_and_the_unpatched_twin_is_oomkilled(chart, v):
    """The same pod twice: limit 1000Mi (Flink's total process for 1000m, so the webhook keeps
    it) and _JAVA_OPTIONS=-Xmx2g. Patched, the JVM's heap is Flink's and filling it stays under
    the limit; opted out, the JVM fills up to 2g and the kernel kills it."""
    base = f"fill-{v.replace('.', '-')}"
    twins = {}
    for mode in ("on", "off"):
        ann = {"flink-memory-webhook/mode": "off"} if mode == "off" else {}
        cm, pod = jobmanager(f"{base}-{mode}", v, "session", limit="1000Mi", annotations=ann, fill=True,
                             env=[{"name": "_JAVA_OPTIONS", "value": "-Xmx2g"}])
        create(cm, pod)
        twins[mode] = pod["metadata"]["name"]
    on, off = twins["on"], twins["off"]
    assert RESOLVED in pod_json(on)["metadata"]["annotations"]
    assert RESOLVED not in pod_json(off)["metadata"].get("annotations", {})
    for name in (on, off):
        wait(f"{name}'s REST /overview", lambda: rest_overview(running(name)), timeout=180)
    for name in (on, off):
        exec_(name, "touch", "/tmp/fmw-fill")

    def oomkilled():
        st = (pod_json(off)["status"].get("containerStatuses") or [{}])[0]
        t = st.get("state", {}).get("terminated")
        return t
    t = wait(f"{off} to end", oomkilled, timeout=120)
    assert t["exitCode"] == 137 and t["reason"] == "OOMKilled", t

    done, ann, peak, limit, held = filled(on, "heap")
    assert held << 20 >= ann["heap"] * 0.8, (done, ann["heap"])
    assert peak < limit
    print(f"{on}: {done.strip()}; cgroup peak {peak >> 20} MiB of {limit >> 20} MiB; {off}: OOMKilled, exit 137")


# ---- TaskManagers ----

def taskmanager(name, v, jm_ip, limit="2Gi", process="1000m", annotations=None, env=None, fill=False):
    """A ConfigMap and a TaskManager pod of Flink's docs' session cluster (container taskmanager,
    args taskmanager, the ConfigMap at /opt/flink/conf), its JobManager's Service name given as a
    host alias for the session JobManager's pod (no cluster DNS runs here)."""
    conf = {"jobmanager.rpc.address": "flink-jobmanager", "jobmanager.rpc.port": "6123",
            "blob.server.port": "6124", "taskmanager.rpc.port": "6122", "taskmanager.numberOfTaskSlots": "2",
            "taskmanager.memory.process.size": process, "parallelism.default": "1"}
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name + "-conf"},
          "data": {conf_file(v): conf_text(v, conf), "log4j-console.properties": LOG4J}}
    container = {"name": "taskmanager", "image": f"localhost/flink:{v}", "imagePullPolicy": "Never",
                 "args": ["taskmanager"], "ports": [{"containerPort": 6122}],
                 "resources": {"limits": {"memory": limit}, "requests": {"memory": limit, "cpu": "100m"}},
                 "volumeMounts": [{"name": "conf", "mountPath": "/opt/flink/conf"}], "env": list(env or [])}
    volumes = [{"name": "conf", "configMap": {"name": name + "-conf"}}]
    if fill:
        add_fill_agent(container, volumes)
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "labels": {"app": "flink", "component": "taskmanager"},
                        "annotations": dict(annotations or {})},
           "spec": {"containers": [container], "volumes": volumes, "restartPolicy": "Never",
                    "hostAliases": [{"ip": jm_ip, "hostnames": ["flink-jobmanager"]}],
                    "terminationGracePeriodSeconds": 5}}
    return cm, pod


def session_jobmanager_ip(started, v):
    """The pod IP of the session JobManager of image v, once it answers /overview."""
    name = started[(v, "session")]
    pod = wait(f"{name}'s REST /overview", lambda: rest_overview(running(name)) and running(name), timeout=180)
    return pod["status"]["podIP"]


def registered(jm_ip, tm_pod):
    """The JobManager's /taskmanagers lists the TaskManager of this pod (by its pod IP)."""
    if not tm_pod:
        return None
    p = run("curl", "-s", "--max-time", "3", f"http://{jm_ip}:8081/taskmanagers", check=False)
    try:
        tms = json.loads(p.stdout).get("taskmanagers", []) if p.returncode == 0 else []
    except json.JSONDecodeError:
        return None
    ip = tm_pod["status"].get("podIP")
    return next((t for t in tms if ip and ip in (t.get("path", "") + t.get("id", ""))), None)


def jvm_args_reference(ann, gc):
    """What this machine's JDK shows for exactly the flags in the annotation's jvmArgs (Flink's),
    with the GC the container's JVM chose."""
    out = run("java", f"-XX:+{gc}", *ann["jvmArgs"].split(), "-XX:+PrintFlagsFinal", "-version").stdout
    return {m.group(1): m.group(2) for m in re.finditer(r"^\s*\S+\s+(\w+)\s+=\s+(\S+)", out, re.M)}


@pytest.mark.parametrize("v", VERSIONS)
def test_taskmanager_runs_at_flinks_size(started, v):
    jm_ip = session_jobmanager_ip(started, v)
    name = f"tm-session-{v.replace('.', '-')}"
    create(*taskmanager(name, v, jm_ip))
    pod = wait(f"{name} Running", lambda: running(name))
    ann = json.loads(pod["metadata"]["annotations"][RESOLVED])
    assert ann.get("role") == "taskmanager", ann
    limits = pod["spec"]["containers"][0]["resources"]["limits"]
    total = qty(ann["totalProcess"])
    # The pod's limit is Flink's total process memory (the user wrote 2Gi).
    assert qty(limits["memory"]) == total, (limits, ann)
    tm = wait(f"{name} registered with the JobManager", lambda: registered(jm_ip, running(name)), timeout=180)
    cg = int(exec_(name, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes").strip())
    assert cg == total
    flags, on = vm_flags(name)
    gc = next(g for g in ("UseSerialGC", "UseG1GC", "UseParallelGC", "UseZGC", "UseShenandoahGC") if g in on)
    ref = jvm_args_reference(ann, gc)
    for flag in ("MaxHeapSize", "MaxDirectMemorySize", "MaxMetaspaceSize"):
        assert flags[flag] == ref[flag], (flag, flags, ann)
    # What the TaskManager told its JobManager it has: Flink's own components. /taskmanagers
    # lists them (TaskManagerInfo's memoryConfiguration) in every line the node runs (1.12+).
    mem = tm.get("memoryConfiguration")
    assert mem, tm
    assert mem.get("managedMemory") == ann["managed"], (mem, ann)
    assert mem.get("networkMemory") == ann["network"], (mem, ann)
    assert mem.get("totalProcessMemory") == total, (mem, ann)
    print(f"{name}: limit {limits['memory']} = cgroup {cg} = totalProcess; MaxHeapSize {flags['MaxHeapSize']}"
          f" MaxDirectMemorySize {flags['MaxDirectMemorySize']} MaxMetaspaceSize {flags['MaxMetaspaceSize']}"
          f" ({gc}); registered as {tm.get('id')}")


@pytest.mark.parametrize("v", VERSIONS)
def test_filled_taskmanager_fits_and_the_unpatched_twin_is_oomkilled(started, v):
    """The same TaskManager pod twice: limit 1000Mi (Flink's total process for 1000m) and
    _JAVA_OPTIONS=-Xmx2g. Patched, the JVM's heap and direct memory are Flink's, and filling
    both stays under the limit; opted out, the JVM fills its heap up to 2g and the kernel kills it."""
    jm_ip = session_jobmanager_ip(started, v)
    base = f"tm-fill-{v.replace('.', '-')}"
    twins = {}
    for mode in ("on", "off"):
        ann = {"flink-memory-webhook/mode": "off"} if mode == "off" else {}
        cm, pod = taskmanager(f"{base}-{mode}", v, jm_ip, limit="1000Mi", annotations=ann, fill=True,
                              env=[{"name": "_JAVA_OPTIONS", "value": "-Xmx2g"}])
        create(cm, pod)
        twins[mode] = pod["metadata"]["name"]
    on, off = twins["on"], twins["off"]
    assert json.loads(pod_json(on)["metadata"]["annotations"][RESOLVED]).get("role") == "taskmanager"
    assert RESOLVED not in pod_json(off)["metadata"].get("annotations", {})
    for name in (on, off):
        wait(f"{name} registered with the JobManager", lambda: registered(jm_ip, running(name)), timeout=180)
    for name in (on, off):
        exec_(name, "sh", "-c", "echo direct,heap > /tmp/fmw-fill")

    def ended():
        st = (pod_json(off)["status"].get("containerStatuses") or [{}])[0]
        return st.get("state", {}).get("terminated")
    t = wait(f"{off} to end", ended, timeout=120)
    assert t["exitCode"] == 137 and t["reason"] == "OOMKilled", t

    done, ann, peak, limit, held = filled(on, "heap and direct memory")
    direct = int(re.search(r"direct held (\d+) MiB", done).group(1))
    heap = ann["frameworkHeap"] + ann["taskHeap"]
    # The heap was filled to the JVM's own limit; a TaskManager of 1000m has a heap of 139 MiB,
    # of which its own objects hold some tens.
    assert "heap committed to its maximum" in done or "OutOfMemoryError" in done, done
    assert held << 20 >= heap * 0.5, (done, heap)
    # Flink's network buffers take their part of the direct memory at start; the rest is filled.
    assert direct << 20 >= (ann["frameworkOffHeap"] + ann["taskOffHeap"]) * 0.5, (done, ann)
    assert peak < limit
    print(f"{on}: {done.strip()}; cgroup peak {peak >> 20} MiB of {limit >> 20} MiB; {off}: OOMKilled, exit 137")


# ---- the chart upgraded while JobManagers are admitted ----

class Admissions:
    """Dry-run creations of a JobManager pod, one after another on one connection per attempt,
    straight to the API server with the admin certificate; counts what was admitted and patched
    and what failed."""

    def __init__(self):
        self.ctx = ssl.create_default_context(cafile=os.environ["FMW_CLUSTER_CA"])
        pki = os.path.dirname(os.environ["FMW_CLUSTER_CA"])
        self.ctx.load_cert_chain(os.path.join(pki, "admin.crt"), os.path.join(pki, "admin.key"))
        url = os.environ["FMW_CLUSTER_URL"]
        self.host, self.port = url.split("//")[1].split(":")
        self.ok = self.failed = 0
        self.errors = []
        self.stop = threading.Event()

    def once(self, i):
        body = json.dumps(probe_pod(f"loop-{i}"))
        conn = http.client.HTTPSConnection(self.host, int(self.port), context=self.ctx, timeout=30)
        try:
            conn.request("POST", f"/api/v1/namespaces/{JM_NS}/pods?dryRun=All", body,
                         {"Content-Type": "application/json"})
            r = conn.getresponse()
            data = r.read()
        finally:
            conn.close()
        if r.status == 201 and RESOLVED in json.loads(data)["metadata"].get("annotations", {}):
            self.ok += 1
        else:
            self.failed += 1
            self.errors.append(f"{r.status} {data[:300]!r}")

    def loop(self):
        i = 0
        while not self.stop.is_set():
            try:
                self.once(i)
            except OSError as e:
                self.failed += 1
                self.errors.append(repr(e))
            i += 1


def test_upgrade_renewing_the_certificate_fails_no_admission(chart):
    helm("upgrade", RELEASE, CHART, "-n", WEBHOOK_NS, *chart_values("--set", "webhook.failurePolicy=Fail"),
         "--wait", "--timeout", "180s")
    cfg = json.loads(kubectl("get", "mutatingwebhookconfigurations", "-o", "json").stdout)["items"]
    assert {w["failurePolicy"] for c in cfg if c["metadata"]["name"].startswith(RELEASE) for w in c["webhooks"]} == {"Fail"}
    wait_for_webhook()
    secret = get(WEBHOOK_NS, "secret", f"{RELEASE}-flink-memory-webhook-tls")["data"]
    before = {p["metadata"]["name"] for p in webhook_pods()}
    adm = Admissions()
    t = threading.Thread(target=adm.loop)
    t.start()
    try:
        time.sleep(3)
        helm("upgrade", RELEASE, CHART, "-n", WEBHOOK_NS,
             *chart_values("--set", "webhook.failurePolicy=Fail", "--set", "tls.generate.renew=true"),
             "--wait", "--timeout", "240s")
        # helm --wait returns when the new pods are Ready; the old ones are still draining.
        wait("the old webhook pods gone", lambda: not before & {p["metadata"]["name"] for p in webhook_pods()},
             timeout=120)
        time.sleep(3)
    finally:
        adm.stop.set()
        t.join()
    after = get(WEBHOOK_NS, "secret", f"{RELEASE}-flink-memory-webhook-tls")["data"]
    assert after["tls.crt"] != secret["tls.crt"] and after["ca.crt"] == secret["ca.crt"]
    assert len(webhook_pods()) == 2
    print(f"upgrade with a renewed certificate: {adm.ok} admissions patched, {adm.failed} failed")
    assert adm.failed == 0, adm.errors[:5]
    assert adm.ok > 20
