"""Faults on the local control plane (runs under tests/cluster/with-cluster.sh).

The webhook runs as a local process; the real kube-apiserver calls it through a
MutatingWebhookConfiguration (clientConfig.url on 127.0.0.1, failurePolicy Ignore, timeout 5 s),
and its own ConfigMap reads go through a loopback TCP proxy in front of that API server, so the
API server can be made unreachable or slow *for the webhook* while admissions keep flowing.

Checked: answers within the lookup deadline with allow + a warning while the API is down or slow,
recovery when it returns; ConfigMap churn under load; certificate rotation under load without a
failed request; SIGTERM under load without a failed in-flight request; failurePolicy honoured
when the webhook is killed hard; a connection flood held at the cap with bounded memory.
"""
import base64
import http.client
import json
import os
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import pytest
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "hostile"))
import harness  # noqa: E402
from harness import Webhook, certs, jm_pod, review  # noqa: E402

KUBECTL = os.environ.get("FMW_KUBECTL", "kubectl")
LOOKUP_MS = 1000
RESOLVED = "flink-memory-webhook/resolved"


def kubectl(*args, input=None, check=True, timeout=60):
    p = subprocess.run([KUBECTL, *args], input=input, capture_output=True, text=True,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)}: {p.stderr}")
    return p


class Proxy:
    """TCP proxy on 127.0.0.1 to `target`. mode: "pass"; "refuse" (accept, then close at once);
    "blackhole" (accept, never answer); "delay" (forward after `delay` seconds). Changing the
    mode cuts the connections it holds, as a restarted or partitioned API server would."""

    def __init__(self, target_port):
        self.target = target_port
        self.mode = "pass"
        self.delay = 0.0
        self.lock = threading.Lock()
        self.socks = set()
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(128)
        self.port = self.ls.getsockname()[1]
        self.running = True
        threading.Thread(target=self._accept, daemon=True).start()

    def set(self, mode, delay=0.0):
        with self.lock:
            self.mode, self.delay = mode, delay
            socks, self.socks = self.socks, set()
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _accept(self):
        while self.running:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        with self.lock:
            mode, delay = self.mode, self.delay
            self.socks.add(c)
        if mode == "refuse":
            c.close()
            return
        if mode == "blackhole":
            return  # held open until the mode changes
        if mode == "delay":
            time.sleep(delay)
        try:
            u = socket.create_connection(("127.0.0.1", self.target), timeout=10)
        except OSError:
            c.close()
            return
        with self.lock:
            self.socks.add(u)
        pair = {c: u, u: c}
        try:
            while True:
                r, _, _ = select.select(list(pair), [], [], 30)
                if not r:
                    break
                for s in r:
                    data = s.recv(65536)
                    if not data:
                        raise OSError
                    pair[s].sendall(data)
        except (OSError, ValueError):
            pass
        for s in (c, u):
            try:
                s.close()
            except OSError:
                pass

    def close(self):
        self.running = False
        self.ls.close()
        self.set("refuse")


def dry_run_pod(ns, obj, timeout=30):
    """kubectl create --dry-run=server: (seconds, pod as stored, warnings)."""
    t0 = time.time()
    p = kubectl("create", "--dry-run=server", "-n", ns, "-o", "json", "-f", "-",
                input=json.dumps(obj), timeout=timeout)
    return time.time() - t0, json.loads(p.stdout), p.stderr


def conf_pod(cm, name=None):
    pod = jm_pod(configmap=cm)
    pod["metadata"] = {"name": name or "jm-" + uuid.uuid4().hex[:6],
                       "labels": {"component": "jobmanager"}}
    return pod


def configmap(name, size):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
            "data": {"flink-conf.yaml": f"jobmanager.memory.process.size: {size}\n"}}


def limit_of(pod):
    return pod["spec"]["containers"][0]["resources"]["limits"]["memory"]


@pytest.fixture(scope="module")
def env():
    d = tempfile.mkdtemp(prefix="fmw-faults-")
    certs(d)
    with open(os.environ["KUBECONFIG"]) as f:
        kc = yaml.safe_load(f)
    api_port = int(kc["clusters"][0]["cluster"]["server"].rsplit(":", 1)[1].strip("/"))
    proxy = Proxy(api_port)
    kc["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{proxy.port}"
    kubeconfig = os.path.join(d, "kubeconfig")
    with open(kubeconfig, "w") as f:
        yaml.safe_dump(kc, f)
    wh = Webhook(d, kubeconfig, "--lookup-timeout-ms", str(LOOKUP_MS),
                 "--max-connections", "64", "--drain-delay-ms", "0")
    wh.start()
    ns = "fmw-faults-" + uuid.uuid4().hex[:6]
    mwc = ns
    kubectl("create", "namespace", ns)
    kubectl("label", "namespace", ns, "fmw-faults=" + mwc)
    with open(os.path.join(d, "ca.crt"), "rb") as f:
        ca = base64.b64encode(f.read()).decode()
    state = {"dir": d, "ns": ns, "mwc": mwc, "proxy": proxy, "wh": wh, "ca": ca,
             "kubeconfig": kubeconfig}
    register(state, "Ignore")
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(configmap("base", "1600m")))
    wait_called(state)
    yield state
    try:
        state["wh"].stop()
    finally:
        kubectl("delete", "mutatingwebhookconfiguration", mwc, "--ignore-not-found", check=False)
        kubectl("delete", "namespace", ns, "--wait=false", check=False)
        proxy.close()
        shutil.rmtree(d, ignore_errors=True)


def register(state, policy):
    config = {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": state["mwc"]},
        "webhooks": [{
            "name": "jobmanager.flink-memory-webhook.apache-flink.io",
            "clientConfig": {"url": f"https://127.0.0.1:{state['wh'].port}/mutate",
                             "caBundle": state["ca"]},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                       "resources": ["pods"]}],
            "namespaceSelector": {"matchLabels": {"fmw-faults": state["mwc"]}},
            "objectSelector": {"matchExpressions": [
                {"key": "component", "operator": "In", "values": ["jobmanager"]}]},
            "failurePolicy": policy, "sideEffects": "None", "admissionReviewVersions": ["v1"],
            "timeoutSeconds": 5}]}
    kubectl("apply", "-f", "-", input=json.dumps(config))


def wait_called(state, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        p = kubectl("create", "--dry-run=server", "-n", state["ns"], "-o", "json", "-f", "-",
                    input=json.dumps(conf_pod("base")), check=False)
        if p.returncode == 0 and RESOLVED in json.loads(p.stdout)["metadata"].get(
                "annotations", {}):
            return
        time.sleep(0.5)
    raise AssertionError("the API server never called the webhook")


def direct(state, obj, timeout=10, path="/mutate?timeout=5s"):
    """One review posted straight to the webhook: (seconds, response object)."""
    ctx = ssl.create_default_context(cafile=os.path.join(state["dir"], "ca.crt"))
    ctx.check_hostname = False
    c = http.client.HTTPSConnection("127.0.0.1", state["wh"].port, timeout=timeout, context=ctx)
    t0 = time.time()
    try:
        c.request("POST", path, body=json.dumps(review(obj, ns=state["ns"])),
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
    finally:
        c.close()
    assert r.status == 200, (r.status, data)
    return time.time() - t0, harness.check_review_answer(
        harness.Response(200, {}, data))


# ---- the API server down or slow, for the webhook ----

@pytest.mark.parametrize("mode", ["refuse", "blackhole", "delay"])
def test_api_unreachable_or_slow_then_back(env, mode):
    ns, proxy = env["ns"], env["proxy"]
    cm = "cm-" + mode
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(configmap(cm, "1600m")))
    proxy.set(mode, delay=3.0)
    try:
        # Never seen by the webhook: nothing cached, the lookup must give up by its deadline.
        for _ in range(3):
            secs, r = direct(env, conf_pod(cm))
            assert r["allowed"] and "patch" not in r, r
            assert any("not read" in w or "config" in w for w in r.get("warnings", [])), r
            assert secs < LOOKUP_MS / 1000 + 1.0, secs
        # Through the real API server as well: the pod is admitted unchanged, with the warning.
        secs, pod, warnings = dry_run_pod(ns, conf_pod(cm))
        assert limit_of(pod) == "2Gi" and "flink-memory-webhook" in warnings, (pod, warnings)
        assert secs < 5, secs
        # One read a moment ago is not served in its place: the pod is admitted unchanged, with
        # the warning, rather than sized from data the API server may have replaced since.
        secs, r = direct(env, conf_pod("base"))
        assert r["allowed"] and "patch" not in r, r
        assert any("not read" in w or "config" in w for w in r.get("warnings", [])), r
    finally:
        proxy.set("pass")
    deadline = time.time() + 15
    while True:
        _, r = direct(env, conf_pod(cm))
        if "patch" in r:
            break
        assert time.time() < deadline, f"no recovery after the API came back: {r}"
        time.sleep(0.3)
    secs, pod, _ = dry_run_pod(ns, conf_pod(cm))
    assert limit_of(pod) == "1600Mi" and RESOLVED in pod["metadata"]["annotations"], pod


# ---- ConfigMap churn ----

def test_configmap_churn(env):
    """The ConfigMap changes every 0.3 s while reviews flow: every answer is one of the sizes it
    had, none fails, and the last size is what the webhook settles on."""
    ns = env["ns"]
    # As the webhook writes them: "<n>Mi" (the API server would store 1024Mi as 1Gi).
    sizes = {"1g": "1024Mi", "1280m": "1280Mi", "1536m": "1536Mi", "3g": "3072Mi"}
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(configmap("churn", "1g")))
    stop = threading.Event()
    seen, failures = set(), []

    def load():
        while not stop.is_set():
            try:
                _, r = direct(env, conf_pod("churn"))
                ann = json.loads(base64.b64decode(r["patch"])) if "patch" in r else []
                for op in ann:
                    if op["path"].endswith("/limits/memory") or op["path"].endswith("/limits"):
                        v = op["value"] if isinstance(op["value"], str) else op["value"]["memory"]
                        seen.add(v)
            except Exception as e:  # noqa: BLE001
                failures.append(repr(e))

    threads = [threading.Thread(target=load) for _ in range(3)]
    for t in threads:
        t.start()
    for i in range(12):
        size = list(sizes)[i % 4]
        kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(configmap("churn", size)))
        time.sleep(0.3)
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(configmap("churn", "1536m")))
    time.sleep(0.5)  # reviews after the last change
    stop.set()
    for t in threads:
        t.join()
    assert not failures, failures[:5]
    assert seen and seen <= set(sizes.values()), seen
    _, pod, _ = dry_run_pod(ns, conf_pod("churn"))
    assert limit_of(pod) == "1536Mi", pod


# ---- load helpers ----

class Load:
    """Threads posting reviews, each on a fresh connection, counting failures. A request counts as
    failed when it was sent and got no valid answer; a refused connection is counted apart."""

    def __init__(self, env, threads=4, obj=None):
        self.env, self.obj = env, obj or conf_pod("base")
        self.stop = threading.Event()
        self.ok, self.failed, self.refused, self.errors = 0, 0, 0, []
        self.threads = [threading.Thread(target=self.run) for _ in range(threads)]

    def run(self):
        ctx = ssl.create_default_context(cafile=os.path.join(self.env["dir"], "ca.crt"))
        ctx.check_hostname = False
        body = json.dumps(review(self.obj, ns=self.env["ns"])).encode()
        while not self.stop.is_set():
            try:
                s = socket.create_connection(("127.0.0.1", self.env["wh"].port), timeout=10)
            except OSError:
                self.refused += 1
                time.sleep(0.05)
                continue
            try:
                t = ctx.wrap_socket(s, server_hostname="localhost")
            except (OSError, ssl.SSLError) as e:
                s.close()
                self.refused += 1  # nothing was sent yet
                self.errors.append("handshake: " + repr(e))
                continue
            try:
                c = http.client.HTTPSConnection("127.0.0.1", self.env["wh"].port, timeout=10)
                c.sock = t
                c.request("POST", "/mutate?timeout=5s", body=body,
                          headers={"Content-Type": "application/json"})
                r = c.getresponse()
                data = r.read()
                harness.check_review_answer(harness.Response(r.status, {}, data))
                self.ok += 1
            except Exception as e:  # noqa: BLE001
                self.failed += 1
                self.errors.append(repr(e))
            finally:
                t.close()

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *a):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)


def test_cert_rotated_under_load(env):
    """New pairs written in place five times while four clients post reviews: no request fails
    and new connections end up on the last certificate."""
    wh, d = env["wh"], env["dir"]
    serials = []
    with Load(env) as load:
        for i in range(5):
            time.sleep(0.6)
            crt, key = certs(d, name=f"rot{i}")
            # As a Secret update lands: key and certificate replaced, each atomically.
            shutil.copy(key, wh.key + ".tmp")
            shutil.copy(crt, wh.cert + ".tmp")
            os.replace(wh.key + ".tmp", wh.key)
            os.replace(wh.cert + ".tmp", wh.cert)
            serials.append(subprocess.run(["openssl", "x509", "-noout", "-serial", "-in", crt],
                                          capture_output=True, text=True).stdout.strip())
        time.sleep(1.5)
    assert load.failed == 0 and load.refused == 0, (load.failed, load.refused, load.errors[:5])
    assert load.ok > 20, load.ok
    der = ssl.PEM_cert_to_DER_cert(ssl.get_server_certificate(("127.0.0.1", wh.port)))
    with open(wh.cert) as f:
        assert der == ssl.PEM_cert_to_DER_cert(f.read())


def test_connection_flood(env):
    """1000 connections at a cap of 64: the process keeps its descriptors and memory bounded and
    answers again at once when the flood goes away."""
    wh = env["wh"]
    rss0 = wh.rss_kib()
    socks = []
    for i in range(1000):
        try:
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", wh.port))
            socks.append(s)
        except OSError:
            break
    time.sleep(1.0)
    fds = wh.open_fds()
    rss = wh.rss_kib()
    for s in socks:
        s.close()
    assert fds < 64 + 40, fds
    assert rss - rss0 < 64 * 1024, (rss0, rss)
    deadline = time.time() + 5
    while True:
        try:
            secs, r = direct(env, conf_pod("base"), timeout=3)
            assert "patch" in r
            break
        except (OSError, AssertionError):
            assert time.time() < deadline, "no answer after the flood"
    assert harness.health(wh.health_port) == 200


def test_sigterm_under_load(env):
    """SIGTERM while four clients post reviews and one review waits on a slow ConfigMap read:
    every request that was sent gets its answer, the process exits 0 within its grace period.
    Clients refused after the listener closed are expected (the API server uses the other
    replica); a restarted webhook serves again."""
    wh, proxy, ns = env["wh"], env["proxy"], env["ns"]
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(configmap("slow-read", "3g")))
    slow_result = {}

    def slow_review():
        try:
            slow_result["r"] = direct(env, conf_pod("slow-read"))
        except Exception as e:  # noqa: BLE001
            slow_result["e"] = repr(e)

    with Load(env) as load:
        time.sleep(1.0)
        proxy.set("delay", delay=0.6)
        t = threading.Thread(target=slow_review)
        t.start()
        time.sleep(0.2)  # the slow review is now inside its lookup
        wh.proc.send_signal(signal.SIGTERM)
        t.join(timeout=15)
        rc = wh.proc.wait(timeout=30)
    proxy.set("pass")
    assert rc == 0, wh.stderr()[-2000:]
    assert "r" in slow_result, slow_result
    assert load.failed == 0, (load.failed, load.errors[:5])
    assert load.ok > 0
    wh.log.close()
    wh.check_sanitizers()
    restart(env)


def restart(env):
    old = env["wh"]
    wh = Webhook(old.dir, env["kubeconfig"], *old.extra)
    wh.port, wh.health_port = old.port, old.health_port  # the registration points there
    wh.start()
    env["wh"] = wh
    wait_called(env)


def test_killed_hard_failure_policy(env):
    """SIGKILL under load. failurePolicy Ignore: pods are admitted unchanged, quickly.
    failurePolicy Fail: they are refused with the API server's webhook error. Then a new
    process serves again."""
    ns, wh = env["ns"], env["wh"]
    with Load(env, threads=2):
        time.sleep(0.5)
        wh.kill()
    wh.log.close()
    secs, pod, _ = dry_run_pod(ns, conf_pod("base"))
    assert RESOLVED not in pod["metadata"].get("annotations", {}) and secs < 5, (secs, pod)
    register(env, "Fail")
    try:
        deadline = time.time() + 20
        while True:
            p = kubectl("create", "--dry-run=server", "-n", ns, "-f", "-",
                        input=json.dumps(conf_pod("base")), check=False)
            if p.returncode != 0:
                break
            assert time.time() < deadline, "failurePolicy Fail never took effect"
            time.sleep(0.5)
        assert "failed calling webhook" in p.stderr or "webhook" in p.stderr, p.stderr
    finally:
        register(env, "Ignore")
    restart(env)
    secs, pod, _ = dry_run_pod(ns, conf_pod("base"))
    assert limit_of(pod) == "1600Mi", pod
