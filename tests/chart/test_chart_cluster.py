"""The Helm chart on the local control plane (tests/cluster/): the real kube-apiserver validates
the rendered objects, and helm installs, upgrades and uninstalls the chart.

Runs under tests/cluster/with-cluster.sh (build/cluster/env sourced). There are no nodes, so the
chart's own webhook pods stay Pending; the install test sets webhook.url and runs the webhook on
this host the way its container runs: from the image's root filesystem (make image-rootfs),
chrooted, read-only, as uid 65532, configured "in cluster" with a token of the chart's own
ServiceAccount (so the chart's RBAC is what lets it read ConfigMaps). That needs root.
"""
import base64
import hashlib
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import pytest
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "cluster"))
from clusterlib import CHART, RESOLVED, ROOT, get, helm, kubectl, qty  # noqa: E402

EXAMPLES = os.path.join(ROOT, "manifests", "examples")
ROOTFS = os.path.join(ROOT, "build", "image", "rootfs")
ID = uuid.uuid4().hex[:6]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_version():
    return json.loads(kubectl("version", "-o", "json").stdout)["serverVersion"]["gitVersion"].lstrip("v")


def make_namespace(name, labels):
    kubectl("create", "namespace", name)
    kubectl("label", "namespace", name, *[f"{k}={v}" for k, v in labels.items()])


def make_certs(d):
    """A CA and a serving certificate for 127.0.0.1 (the webhook.url the API server calls)."""
    def sh(*a):
        subprocess.run(a, check=True, capture_output=True, cwd=d)
    sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
       "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=fmw-chart-test-ca")
    sh("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "tls.key",
       "-out", "tls.csr", "-subj", "/CN=127.0.0.1")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    sh("openssl", "x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
       "-days", "1", "-out", "tls.crt", "-extfile", "ext.cnf")


RESTRICTED = {"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/warn": "restricted",
              "pod-security.kubernetes.io/audit": "restricted"}


@pytest.fixture(scope="module")
def restricted_ns():
    ns = f"fmwc-restricted-{ID}"
    make_namespace(ns, RESTRICTED)
    yield ns
    kubectl("delete", "namespace", ns, "--wait=false", check=False)


def render(ns, *values):
    out = helm("template", f"fmwc-{ID}", CHART, "--namespace", ns, "--kube-version", server_version(),
               *values).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def as_list(docs):
    """Objects for kubectl as one JSON List. Not YAML written again from Python: PyYAML leaves a
    string like 123e45 unquoted, and the API server's YAML reader takes that for a number."""
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": docs})


TLS_MODES = {
    "generate": [],
    "cert-manager": ["--set", "tls.mode=cert-manager"],
    "secret": ["--set", "tls.mode=secret", "--set", "tls.secret.name=corp-tls", "--set",
               "tls.secret.caBundle=" + base64.b64encode(b"x").decode()],
    "url": ["--set", "webhook.url=https://127.0.0.1:1/mutate", "--set",
            "webhook.caBundle=" + base64.b64encode(b"x").decode()],
    # Not a TLS mode: the default one with the NetworkPolicy on.
    "generate-networkpolicy": ["--set", "networkPolicy.enabled=true",
                               "--set", "networkPolicy.apiServerCIDRs={10.0.0.0/8,192.0.2.10/32}",
                               "--set-json", 'networkPolicy.metricsFrom=[{"namespaceSelector":'
                               '{"matchLabels":{"kubernetes.io/metadata.name":"monitoring"}}}]'],
}


@pytest.mark.parametrize("mode", sorted(TLS_MODES))
def test_rendered_chart_is_accepted_by_the_api_server(mode, restricted_ns):
    """kubectl apply --dry-run=server of everything the chart renders, in a namespace that enforces
    (and warns about) the restricted Pod Security Standard: no error, no warning. cert-manager's
    kinds are not served here (no cert-manager), so those objects are set aside and named."""
    docs = render(restricted_ns, *TLS_MODES[mode])
    certmanager = [d for d in docs if d["apiVersion"].startswith("cert-manager.io/")]
    rest = [d for d in docs if d not in certmanager]
    assert sorted(d["kind"] for d in certmanager) == (
        ["Certificate", "Certificate", "Issuer", "Issuer"] if mode == "cert-manager" else [])
    p = kubectl("apply", "--dry-run=server", "-n", restricted_ns, "-f", "-", input=as_list(rest), check=False)
    assert p.returncode == 0, p.stderr
    assert "Warning" not in p.stderr, p.stderr
    assert p.stdout.count("(server dry run)") == len(rest)
    # PodSecurity enforces on pods, not on Deployments: a pod made from the template is admitted.
    # (Its ServiceAccount must exist for that: the dry run above stored nothing.)
    sa = next(d for d in rest if d["kind"] == "ServiceAccount")
    kubectl("apply", "-n", restricted_ns, "-f", "-", input=json.dumps(sa))
    dep = next(d for d in rest if d["kind"] == "Deployment")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "webhook-pod", **dep["spec"]["template"]["metadata"]},
           "spec": dep["spec"]["template"]["spec"]}
    p = kubectl("apply", "--dry-run=server", "-n", restricted_ns, "-f", "-", input=json.dumps(pod), check=False)
    assert p.returncode == 0 and "Warning" not in p.stderr, p.stderr
    # ... and the namespace does enforce: the same pod allowed to escalate privileges is refused.
    pod["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    p = kubectl("apply", "--dry-run=server", "-n", restricted_ns, "-f", "-", input=json.dumps(pod), check=False)
    assert p.returncode != 0 and "violates PodSecurity" in p.stderr, p.stderr


def test_a_checksum_made_of_digits_is_still_a_string(restricted_ns):
    """checksum/tls in the pod template is 16 hex digits of the certificate's hash. About one install in
    1,800 they are all decimal digits (a few more: digits around one 'e'), and unquoted YAML reads that
    as a number, which the API server refuses in an annotation. The chart reuses an existing Secret's
    certificate, so one whose hash starts with 16 decimal digits makes that case on purpose; helm renders
    with the lookup and its output goes to the API server as is, read by the same YAML code as helm's."""
    for i in itertools.count():
        crt = base64.b64encode(f"certificate {i}\n".encode()).decode()
        digits = hashlib.sha256(crt.encode()).hexdigest()[:16]
        if digits.isdigit():
            break
    name = f"fmwc-{ID}-flink-memory-webhook-tls"
    pem = base64.b64encode(b"not parsed by the chart").decode()
    secret = {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
              "metadata": {"name": name, "namespace": restricted_ns},
              "data": {"ca.crt": pem, "ca.key": pem, "tls.crt": crt, "tls.key": pem}}
    kubectl("apply", "-f", "-", input=json.dumps(secret))
    try:
        out = helm("template", f"fmwc-{ID}", CHART, "--namespace", restricted_ns, "--dry-run=server").stdout
        dep = next(d for d in yaml.safe_load_all(out) if d and d["kind"] == "Deployment")
        assert dep["spec"]["template"]["metadata"]["annotations"]["checksum/tls"] == digits
        p = kubectl("apply", "--dry-run=server", "-n", restricted_ns, "-f", "-", input=out, check=False)
        assert p.returncode == 0, p.stderr
    finally:
        kubectl("delete", "-n", restricted_ns, "secret", name, "--wait=false", check=False)


def test_static_install_is_accepted_by_the_api_server():
    with open(os.path.join(ROOT, "manifests", "install.yaml")) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    rest = [d for d in docs if not d["apiVersion"].startswith("cert-manager.io/")]
    # Its namespace is new; a server-side dry run of objects inside it needs it to exist.
    ns = next(d for d in rest if d["kind"] == "Namespace")["metadata"]["name"]
    created = kubectl("get", "namespace", ns, check=False).returncode != 0
    if created:
        kubectl("apply", "-f", "-", input=json.dumps(next(d for d in rest if d["kind"] == "Namespace")))
    try:
        p = kubectl("apply", "--dry-run=server", "-f", "-", input=as_list(rest), check=False)
        assert p.returncode == 0 and "Warning" not in p.stderr, p.stderr
    finally:
        if created:
            kubectl("delete", "namespace", ns, "--wait=false", check=False)


def secret_data(ns, name):
    return get(ns, "secret", name)["data"]


def webhook_cas(name):
    mwc = json.loads(kubectl("get", "mutatingwebhookconfiguration", name, "-o", "json").stdout)
    return {w["clientConfig"].get("caBundle") for w in mwc["webhooks"]}


def checksum(ns, name):
    return get(ns, "deployment", name)["spec"]["template"]["metadata"]["annotations"]["checksum/tls"]


def test_generated_tls_survives_upgrade_and_uninstall_leaves_nothing():
    release = f"fmwc-gen-{ID}"
    ns = release
    full = f"{release}-flink-memory-webhook"
    # A namespace label nobody has: the API server never calls this release's (absent) pods.
    sel = ["--set-string", f"webhook.namespaceSelector.matchLabels.fmw-chart-never={ID}"]
    try:
        helm("install", release, CHART, "-n", ns, "--create-namespace", *sel)
        first = secret_data(ns, f"{full}-tls")
        assert webhook_cas(full) == {first["ca.crt"]}
        sum1 = checksum(ns, full)

        helm("upgrade", release, CHART, "-n", ns, *sel, "--set", "logLevel=debug")
        assert secret_data(ns, f"{full}-tls") == first, "helm upgrade replaced the generated TLS Secret"
        assert webhook_cas(full) == {first["ca.crt"]}
        assert checksum(ns, full) == sum1, "an unchanged certificate rolled the pods"
        assert "--log-level=debug" in get(ns, "deployment", full)["spec"]["template"]["spec"]["containers"][0]["args"]

        helm("upgrade", release, CHART, "-n", ns, *sel, "--set", "tls.generate.renew=true")
        renewed = secret_data(ns, f"{full}-tls")
        assert renewed["ca.crt"] == first["ca.crt"] and renewed["ca.key"] == first["ca.key"]
        assert renewed["tls.crt"] != first["tls.crt"]
        assert webhook_cas(full) == {first["ca.crt"]}
        assert checksum(ns, full) != sum1, "a new certificate must roll the pods"
        with tempfile.TemporaryDirectory() as d:
            for k in ("ca.crt", "tls.crt"):
                with open(os.path.join(d, k), "wb") as f:
                    f.write(base64.b64decode(renewed[k]))
            subprocess.run(["openssl", "verify", "-CAfile", "ca.crt", "tls.crt"], cwd=d, check=True,
                           capture_output=True)

        helm("upgrade", release, CHART, "-n", ns, *sel)
        assert secret_data(ns, f"{full}-tls") == renewed

        helm("uninstall", release, "-n", ns)
        assert kubectl("get", "mutatingwebhookconfiguration", full, check=False).returncode != 0
        left = kubectl("get", "mutatingwebhookconfigurations,clusterroles,clusterrolebindings", "-l",
                       f"app.kubernetes.io/instance={release}", "-o", "name").stdout
        assert left == "", left
        left = kubectl("get", "all,secrets,serviceaccounts,poddisruptionbudgets", "-n", ns, "-l",
                       f"app.kubernetes.io/instance={release}", "-o", "name").stdout
        assert left == "", left
    finally:
        helm("uninstall", release, "-n", ns, check=False)
        kubectl("delete", "namespace", ns, "--wait=false", check=False)


class RootfsWebhook:
    """flink-memory-webhook run from the image's rootfs as its container would run it."""

    SETUP = r'''
        set -e
        root=$1 work=$2
        shift 2
        mount --make-rprivate /
        mount --bind "$root" "$root"
        mount -o remount,bind,ro "$root"
        mount -t tmpfs -o size=16m,mode=1777 tmpfs "$root/tmp"
        mount --bind "$work/tls" "$root/etc/flink-memory-webhook/tls"
        mount --bind "$work/sa" "$root/var/run/secrets/kubernetes.io/serviceaccount"
        exec chroot --userspec=65532:65532 "$root" "$@"
    '''

    def __init__(self, work, namespace, token, port):
        self.work = work
        self.rootfs = os.path.join(work, "rootfs")
        shutil.copytree(ROOTFS, self.rootfs, symlinks=True)
        for d in ("etc/flink-memory-webhook/tls", "var/run/secrets/kubernetes.io/serviceaccount"):
            os.makedirs(os.path.join(self.rootfs, d))
        os.makedirs(os.path.join(work, "tls"))
        os.makedirs(os.path.join(work, "sa"))
        for k in ("tls.crt", "tls.key"):
            shutil.copy(os.path.join(work, k), os.path.join(work, "tls", k))
        shutil.copy(os.environ["FMW_CLUSTER_CA"], os.path.join(work, "sa", "ca.crt"))
        with open(os.path.join(work, "sa", "token"), "w") as f:
            f.write(token)
        with open(os.path.join(work, "sa", "namespace"), "w") as f:
            f.write(namespace)
        for dirpath, _, files in os.walk(work):
            for name in files + ["."]:
                if dirpath.startswith(self.rootfs):
                    continue
                os.chown(os.path.join(dirpath, name), 65532, 65532)
        self.port = port
        self.health = free_port()
        self.proc = None

    def start(self):
        api = os.environ["FMW_CLUSTER_URL"].rsplit(":", 1)
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "KUBERNETES_SERVICE_HOST": "127.0.0.1",
               "KUBERNETES_SERVICE_PORT": api[1]}
        self.log = open(os.path.join(self.work, "webhook.log"), "w")
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--", "bash", "-c", self.SETUP, "setup", self.rootfs, self.work,
             "/usr/local/bin/flink-memory-webhook", "--tls-cert-file=/etc/flink-memory-webhook/tls/tls.crt",
             "--tls-key-file=/etc/flink-memory-webhook/tls/tls.key", "--listen-address=127.0.0.1",
             f"--port={self.port}", f"--health-port={self.health}", "--drain-delay-ms=0"],
            env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while time.time() < deadline:
            assert self.proc.poll() is None, self.logs()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("the webhook did not start:\n" + self.logs())

    def metric(self, series):
        import urllib.request
        with urllib.request.urlopen(f"http://127.0.0.1:{self.health}/metrics", timeout=5) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(series + " "):
                    return float(line.split()[-1])
        raise AssertionError(f"no series {series}")

    def logs(self):
        with open(os.path.join(self.work, "webhook.log")) as f:
            return f.read()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            assert self.proc.wait(timeout=30) == 0, self.logs()


def wait_for_webhook(ns, probe_labels=None):
    probe = {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": "probe", "labels": probe_labels or {"component": "jobmanager"}},
             "spec": {"containers": [{"name": "jobmanager", "image": "flink:1.18.1", "args": ["jobmanager"]}]}}
    deadline = time.time() + 30
    while time.time() < deadline:
        p = kubectl("apply", "--dry-run=server", "-n", ns, "-o", "json", "-f", "-", input=json.dumps(probe),
                    check=False)
        if p.returncode == 0 and RESOLVED in json.loads(p.stdout)["metadata"].get("annotations", {}):
            return
        time.sleep(0.5)
    raise AssertionError("the API server never called the webhook")


def jobmanager_pods(ns, count):
    deadline = time.time() + 60
    pods = []
    while time.time() < deadline:
        pods = json.loads(kubectl("get", "pods", "-n", ns, "-l", "component=jobmanager", "-o", "json").stdout)["items"]
        if len(pods) >= count:
            return {p["metadata"].get("labels", {}).get("app"): p for p in pods}
        time.sleep(0.5)
    raise AssertionError(f"{len(pods)} JobManager pods, wanted {count}")


def jm(pod):
    return next(c for c in pod["spec"]["containers"] if c["name"] in ("jobmanager", "flink"))


@pytest.fixture(scope="module")
def installed():
    """helm install with webhook.url pointing at the rootfs webhook, authenticated as the chart's
    ServiceAccount; a demo namespace labelled for it."""
    if os.geteuid() != 0:
        pytest.skip("runs the webhook from the image rootfs (unshare, chroot): needs root")
    assert os.path.isdir(ROOTFS), "build/image/rootfs is missing: make image-rootfs"
    work = tempfile.mkdtemp(prefix="fmw-chart-")
    make_certs(work)
    release, ns, demo = f"fmwc-{ID}", f"fmwc-{ID}", f"fmwc-demo-{ID}"
    full = f"{release}-flink-memory-webhook"
    make_namespace(demo, {"fmw-chart": ID})
    with open(os.path.join(work, "ca.crt"), "rb") as f:
        ca = base64.b64encode(f.read()).decode()
    port = free_port()
    values = ["--set", f"webhook.url=https://127.0.0.1:{port}/mutate", "--set", f"webhook.caBundle={ca}",
              "--set-string", f"webhook.namespaceSelector.matchLabels.fmw-chart={ID}"]
    helm("install", release, CHART, "-n", ns, "--create-namespace", *values)
    token = kubectl("create", "token", full, "-n", ns, "--duration=1h").stdout.strip()
    wh = RootfsWebhook(work, ns, token, port)
    wh.start()
    state = {"release": release, "ns": ns, "demo": demo, "full": full, "values": values, "webhook": wh}
    try:
        wait_for_webhook(demo)
        yield state
    finally:
        wh.stop()
        helm("uninstall", release, "-n", ns, check=False)
        for n in (ns, demo):
            kubectl("delete", "namespace", n, "--wait=false", check=False)
        shutil.rmtree(work, ignore_errors=True)


def test_jobmanagers_in_a_labelled_namespace_are_sized(installed):
    demo = installed["demo"]
    warnings = {}
    for name in ("session-cluster-flink-1.18", "application-mode-flink-2.1", "custom-command-jobmanager"):
        p = kubectl("apply", "-n", demo, "-f", os.path.join(EXAMPLES, name + ".yaml"))
        warnings[name] = [line for line in p.stderr.splitlines() if line.startswith("Warning: flink-memory-webhook")]
    assert "Warning: flink-memory-webhook: jobmanager: pods will get memory limit 2Gi -> 1600Mi (Flink 1.18)" in \
        warnings["session-cluster-flink-1.18"]
    assert "Warning: flink-memory-webhook: flink: -Xmx in _JAVA_OPTIONS 3221225472 -> 939524096 (Flink 1.20)" in \
        warnings["custom-command-jobmanager"]
    pods = jobmanager_pods(demo, 3)
    expect = {"flink": (1600 * 2**20, "FLINK_ENV_JAVA_OPTS_JM", "-Xmx1073741824 -XX:+UseG1GC"),
              "flink-app": (2048 * 2**20, None, None),
              "flink-custom": (1728 * 2**20, "_JAVA_OPTIONS", "-Xmx939524096 -Djava.security.egd=file:/dev/urandom")}
    for app, (size, var, value) in expect.items():
        c = jm(pods[app])
        assert qty(c["resources"]["limits"]["memory"]) == size, app
        assert qty(c["resources"]["requests"]["memory"]) == size, app
        if var:
            assert {"name": var, "value": value} in c["env"], c["env"]
        assert json.loads(pods[app]["metadata"]["annotations"][RESOLVED])["totalProcess"] == f"{size >> 20}Mi"
    # The workloads themselves stay as written (workloads: warn).
    dep = get(demo, "deployment", "flink-jobmanager")
    assert dep["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] == "2Gi"



def test_taskmanagers_in_a_labelled_namespace_are_sized(installed):
    """The examples' TaskManager Deployments (applied by the test above): the chart's
    taskmanager-pods webhook is called for their pods. Expected sizes: Flink's BashJavaUtils
    GET_TM_RESOURCE_PARAMS on each example's ConfigMap (1.18.1: taskmanager.memory.process.size
    1728m -> -Xmx536870902 -Xms536870902 -XX:MaxDirectMemorySize=268435458
    -XX:MaxMetaspaceSize=268435456; 2.1: 4g -> 4096Mi)."""
    demo = installed["demo"]
    expect = {"flink": (1728 * 2**20, "-Xmx536870902 -Xms536870902 -XX:MaxDirectMemorySize=268435458 "
                                      "-XX:MaxMetaspaceSize=268435456"),
              "flink-app": (4096 * 2**20, None)}
    deadline = time.time() + 60
    tms = {}
    while time.time() < deadline:
        items = json.loads(kubectl("get", "pods", "-n", demo, "-l", "component=taskmanager", "-o", "json").stdout)[
            "items"]
        tms = {p["metadata"].get("labels", {}).get("app"): p for p in items}
        if set(expect) <= set(tms):
            break
        time.sleep(0.5)
    assert set(expect) <= set(tms), f"TaskManager pods of {sorted(tms)}, wanted {sorted(expect)}"
    for app, (size, jvm_args) in expect.items():
        c = next(c for c in tms[app]["spec"]["containers"] if c["name"] == "taskmanager")
        assert qty(c["resources"]["limits"]["memory"]) == size, app
        assert qty(c["resources"]["requests"]["memory"]) == size, app
        resolved = json.loads(tms[app]["metadata"]["annotations"][RESOLVED])
        assert resolved["role"] == "taskmanager" and resolved["totalProcess"] == f"{size >> 20}Mi", app
        if jvm_args:
            assert resolved["jvmArgs"] == jvm_args, app


def test_every_label_set_of_both_roles_reaches_the_webhook(installed):
    """A pod carrying only one label set of webhook.jobManagerLabels or webhook.taskManagerLabels
    (the chart's defaults) is sent to the webhook, and nothing else is."""
    demo = installed["demo"]
    with open(os.path.join(CHART, "values.yaml")) as f:
        webhook = yaml.safe_load(f)["webhook"]
    for role, sets in (("jobmanager", webhook["jobManagerLabels"]), ("taskmanager", webhook["taskManagerLabels"])):
        for labels in sets:
            pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"label-{role}", "labels": labels},
                   "spec": {"containers": [{"name": role, "image": "flink:1.18.1", "args": [role]}]}}
            p = kubectl("apply", "--dry-run=server", "-n", demo, "-o", "json", "-f", "-", input=json.dumps(pod))
            annotations = json.loads(p.stdout)["metadata"].get("annotations", {})
            assert RESOLVED in annotations, (role, labels, p.stderr)
            assert json.loads(annotations[RESOLVED]).get("role", "jobmanager") == role, (role, labels)
    # A TaskManager labelled otherwise is not sent.
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "label-other", "labels": {"component": "worker"}},
           "spec": {"containers": [{"name": "taskmanager", "image": "flink:1.18.1", "args": ["taskmanager"]}]}}
    p = kubectl("apply", "--dry-run=server", "-n", demo, "-o", "json", "-f", "-", input=json.dumps(pod))
    assert RESOLVED not in json.loads(p.stdout)["metadata"].get("annotations", {})


# Layouts from the admission corpus (tests/data/admission/cases.yaml), each with its own label
# convention: the chart's webhooks must be called for every one, and the API server must keep
# what the corpus expects.
LAYOUT_CASES = [
    "bitnami-chart-defaults-768Mi-under-a-1600m-jobmanager",
    "lyft-operator-sizes-flink-below-its-request",
    "spotify-operator-sizes-flink-at-80-percent-of-the-limit",
    "native-1.18-limit-factor-is-flinks-own-limit",
    "operator-standalone-mode-1.20-limit-factor-in-config-yaml",
    "taskmanager-with-the-image-default-is-sized",
    "bitnami-taskmanager-mode-is-sized",
    "native-1.18-taskmanager-as-flink-made-it-is-unchanged",
]


def test_every_known_layout_is_called_and_sized(installed):
    demo = installed["demo"]
    with open(os.path.join(ROOT, "tests", "data", "admission", "cases.yaml")) as f:
        corpus = yaml.safe_load(f)
    cms = []
    for cm in corpus["configmaps"]:
        cm = dict(cm, metadata={"name": cm["metadata"]["name"]})
        cms.append(cm)
    kubectl("apply", "-n", demo, "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": cms}))
    cases = {c["name"]: c for c in corpus["cases"]}
    for name in LAYOUT_CASES:
        case = cases[name]
        pod = dict(case["object"], apiVersion="v1")
        p = kubectl("apply", "--dry-run=server", "-n", demo, "-o", "json", "-f", "-", input=json.dumps(pod))
        got = json.loads(p.stdout)
        annotations = got["metadata"].get("annotations", {})
        assert RESOLVED in annotations, (name, "the webhook was not called", p.stderr)
        resolved = json.loads(annotations[RESOLVED])
        for key, value in case["expect"].get("annotation", {}).items():
            assert resolved[key] == value, (name, key)
        want = case["expect"].get("container", {}).get("resources")
        c = got["spec"]["containers"][0]
        for section in ("limits", "requests"):
            have = c.get("resources", {}).get(section, {}).get("memory")
            expect = (want or pod["spec"]["containers"][0].get("resources", {})).get(section, {}).get("memory")
            assert qty(have) == qty(expect), (name, section, have, expect)


def test_dry_run_server_previews_the_patch(installed):
    demo = installed["demo"]
    with open(os.path.join(EXAMPLES, "custom-command-jobmanager.yaml")) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    pod = next(d for d in docs if d["kind"] == "Pod")
    pod["metadata"]["name"] = "preview"
    p = kubectl("apply", "--dry-run=server", "-n", demo, "-o", "yaml", "-f", "-", input=json.dumps(pod))
    shown = yaml.safe_load(p.stdout)
    assert shown["spec"]["containers"][0]["resources"]["limits"]["memory"] == "1728Mi"
    assert "Warning: flink-memory-webhook: flink: memory limit 4Gi -> 1728Mi (Flink 1.20)" in p.stderr
    assert kubectl("get", "-n", demo, "pod", "preview", check=False).returncode != 0


def test_a_namespace_labelled_from_limit_sizes_from_the_limit(installed):
    """helm upgrade with webhook.sizingNamespaceLabel=true: a namespace labelled
    flink-memory-webhook/sizing=from-limit gets its pods sized from their limits (the twin
    webhook calls /mutate/from-limit), while the demo namespace, unlabelled, keeps sizing from the
    configuration. The JobManager's flags: Flink 1.18.1's BashJavaUtils with
    -D jobmanager.memory.process.size=3221225472b on the image's default file."""
    release, ns, demo = installed["release"], installed["ns"], installed["demo"]
    helm("upgrade", release, CHART, "-n", ns, *installed["values"], "--set", "webhook.sizingNamespaceLabel=true")
    sized = f"fmwc-sized-{ID}"
    make_namespace(sized, {"fmw-chart": ID, "flink-memory-webhook/sizing": "from-limit"})
    try:
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "jm", "labels": {"component": "jobmanager"}},
               "spec": {"containers": [{"name": "jobmanager", "image": "flink:1.18.1", "args": ["jobmanager"],
                                        "resources": {"limits": {"memory": "3Gi"}}}]}}
        deadline = time.time() + 30
        while True:  # the API server picks up the new webhooks asynchronously
            p = kubectl("apply", "--dry-run=server", "-n", sized, "-o", "json", "-f", "-", input=json.dumps(pod))
            shown = json.loads(p.stdout)
            ann = json.loads(shown["metadata"].get("annotations", {}).get(RESOLVED, "{}"))
            if ann.get("sizing") == "from-limit" or time.time() > deadline:
                break
            time.sleep(0.5)
        assert ann.get("sizing") == "from-limit", shown
        c = shown["spec"]["containers"][0]
        assert c["args"] == ["jobmanager", "-D", "jobmanager.memory.process.size=$(FLINK_MEMORY_WEBHOOK_SIZE)b"]
        assert qty(c["resources"]["limits"]["memory"]) == 3 * 2**30
        assert ann["totalProcess"] == "3072Mi"
        # The unlabelled namespace still sizes from the configuration.
        p = kubectl("apply", "--dry-run=server", "-n", demo, "-o", "json", "-f", "-", input=json.dumps(pod))
        shown = json.loads(p.stdout)
        assert qty(shown["spec"]["containers"][0]["resources"]["limits"]["memory"]) == 1600 * 2**20
        assert "sizing" not in json.loads(shown["metadata"]["annotations"][RESOLVED])
    finally:
        kubectl("delete", "namespace", sized, "--wait=false", check=False)


def test_chart_rbac_is_what_reads_the_configmaps(installed):
    """With rbac.namespaces naming another namespace, the chart's ServiceAccount may no longer read
    ConfigMaps in the demo namespace: a pod mounting one it has not read before (the webhook serves
    a recent copy when the API fails) is admitted unchanged, with a warning."""
    demo, ns, release = installed["demo"], installed["ns"], installed["release"]
    helm("upgrade", release, CHART, "-n", ns, *installed["values"], "--set", f"rbac.namespaces={{{ns}}}")
    try:
        with open(os.path.join(EXAMPLES, "custom-command-jobmanager.yaml")) as f:
            cm, pod = [d for d in yaml.safe_load_all(f) if d]
        cm["metadata"]["name"] = "unread-config"
        kubectl("apply", "-n", demo, "-f", "-", input=json.dumps(cm))
        pod["metadata"]["name"] = "no-rbac"
        pod["spec"]["volumes"][0]["configMap"]["name"] = "unread-config"
        p = kubectl("apply", "--dry-run=server", "-n", demo, "-o", "json", "-f", "-", input=json.dumps(pod))
        assert "config not read, pod unchanged" in p.stderr, p.stderr
        # The lookup failed because RBAC said no: the API server and the metrics say so.
        sa = f"system:serviceaccount:{ns}:{installed['full']}"
        assert kubectl("auth", "can-i", "get", "configmaps", "-n", demo, "--as", sa, check=False).stdout.strip() == "no"
        assert kubectl("auth", "can-i", "get", "configmaps", "-n", ns, "--as", sa).stdout.strip() == "yes"
        assert kubectl("auth", "can-i", "update", "configmaps", "-n", ns, "--as", sa, check=False).stdout.strip() == "no"
        assert installed["webhook"].metric('flink_memory_webhook_configmap_lookups_total{result="error"}') >= 1
        assert json.loads(p.stdout)["spec"]["containers"][0]["resources"]["limits"]["memory"] == "4Gi"
    finally:
        helm("upgrade", release, CHART, "-n", ns, *installed["values"])
    # With the ClusterRole back, the same pod is sized.
    p = kubectl("apply", "--dry-run=server", "-n", demo, "-o", "json", "-f", "-", input=json.dumps(pod))
    assert json.loads(p.stdout)["spec"]["containers"][0]["resources"]["limits"]["memory"] == "1728Mi", p.stderr


def test_uninstall_leaves_no_webhook_behind(installed):
    release, ns, demo, full = installed["release"], installed["ns"], installed["demo"], installed["full"]
    helm("uninstall", release, "-n", ns)
    assert kubectl("get", "mutatingwebhookconfiguration", full, check=False).returncode != 0
    left = kubectl("get", "mutatingwebhookconfigurations,clusterroles,clusterrolebindings", "-l",
                   f"app.kubernetes.io/instance={release}", "-o", "name").stdout
    assert left == "", left
    # The API server stops calling the webhook (watch propagation takes a moment).
    with open(os.path.join(EXAMPLES, "custom-command-jobmanager.yaml")) as f:
        pod = next(d for d in yaml.safe_load_all(f) if d and d["kind"] == "Pod")
    pod["metadata"]["name"] = "after-uninstall"
    deadline = time.time() + 30
    while True:
        p = kubectl("apply", "--dry-run=server", "-n", demo, "-o", "json", "-f", "-", input=json.dumps(pod))
        if RESOLVED not in json.loads(p.stdout)["metadata"].get("annotations", {}):
            break
        assert time.time() < deadline, "the API server still calls the uninstalled webhook"
        time.sleep(0.5)
