"""make bench / make bench-quick: flink-memory-webhook against a controller-runtime peer.

Everything runs on this machine, traffic on loopback only. The server under test is pinned to CPU 0
and the load generator (and this harness) to CPU 1. Ours and the peer are measured in the same run,
interleaved: each round starts ours, measures it, stops it, then the peer (the order alternates
between rounds). Every figure is the median over rounds; `spread` is the min and max of ours.

  python3 bench/run.py --build DIR [--rounds N] [--quick] [--readme]

Writes DIR/bench/result.json, DIR/bench/table.md and prints the table. See README.md
("Performance") for how each figure is measured.
"""
import argparse
import base64
import copy
import http.client
import json
import os
import platform
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time

import jsonpatch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVER_CPU, LOAD_CPU = 0, 1
CLK_TCK = os.sysconf("SC_CLK_TCK")
RESOLVED = "flink-memory-webhook/resolved"
FIXTURES = ["jm-5k", "two-container", "jm-64k", "tm-5k"]
RATES = [500, 2000, 5000]
# The other fixtures at one rate each: the 64 KB pod costs ~10x the 5 KB one, so 2,000/s would be
# past one core for either server and measure only a queue. The TaskManager pod is the size of the
# JobManager's 5 KB one and runs at that one's 2,000/s, so their CPU per request compare.
OTHER_RATES = {"two-container": 2000, "jm-64k": 500, "tm-5k": 2000}
# Fixtures on which the peer writes the webhook's resolved annotation byte for byte; on the others
# it records its own breakdown and the annotation is left out of the comparison.
SAME_ANNOTATION = {"tm-5k"}
# A rate is sustained when every request is answered 200/allowed within the timeout and the p99
# stays under this: a server that falls behind an open-loop schedule builds a queue whose latency
# grows for the whole step, far past this bound.
SUSTAINED_P99_MS = 50.0


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- machine and process facts ----

def machine():
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    return "%s, %d vCPU, %.0f GiB, Linux %s" % (model, os.cpu_count(), mem_kb / 2**20,
                                                 platform.release())


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def cpu_seconds(pid):
    """utime + stime of the process, all its threads, dead ones included."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def status_kb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def private_kb(pid):
    """Pages only this process maps (USS): RSS less the shared library pages."""
    total = 0
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                total += int(line.split()[1])
    return total


class RssSampler(threading.Thread):
    """The largest VmRSS seen every 50 ms while running."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.max_kb, self.stop = pid, 0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                self.max_kb = max(self.max_kb, status_kb(self.pid, "VmRSS"))
            except OSError:
                return
            self.stop.wait(0.05)


# ---- setup: fixtures, certificate, kubeconfig, binaries ----

def setup(out, bins):
    fx = os.path.join(out, "fixtures")
    run([sys.executable, os.path.join(ROOT, "bench", "fixtures.py"), fx])
    tls = os.path.join(out, "tls")
    os.makedirs(tls, exist_ok=True)
    if not os.path.exists(os.path.join(tls, "cert.pem")):
        # RSA 2048: what cert-manager and most webhook charts issue by default.
        run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
             "-keyout", os.path.join(tls, "key.pem"), "-out", os.path.join(tls, "cert.pem"),
             "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
    # No ConfigMap is read by these fixtures; an API server that refuses at once will do.
    kubeconfig = os.path.join(out, "kubeconfig")
    with open(kubeconfig, "w") as f:
        json.dump({"apiVersion": "v1", "kind": "Config", "current-context": "x",
                   "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                   "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:%d" % free_port()}}],
                   "users": [{"name": "u", "user": {"token": "t"}}]}, f)
    return fx, tls, kubeconfig


class Impl:
    def __init__(self, name, argv_of_port):
        self.name, self.argv_of_port = name, argv_of_port


def impls(bins, tls, kubeconfig):
    cert, key = os.path.join(tls, "cert.pem"), os.path.join(tls, "key.pem")
    ours = Impl("ours", lambda port: [
        bins["webhook"], "--tls-cert-file", cert, "--tls-key-file", key, "--kubeconfig", kubeconfig,
        "--listen-address", "127.0.0.1", "--port", str(port), "--health-port", "-1",
        "--drain-delay-ms", "0", "--grace-ms", "5000"])
    peer = Impl("peer", lambda port: [
        bins["peer"], "--tls-cert-file", cert, "--tls-key-file", key,
        "--listen-address", "127.0.0.1", "--port", str(port)])
    return [ours, peer]


# ---- a running server under the loadgen's `ready` ----

class Server:
    def __init__(self, impl, bins, tls, fixture, pin=True):
        self.port = free_port()
        self.logf = open(os.devnull, "w")
        cmd = [bins["loadgen"], "ready", "--port", str(self.port), "--ca",
               os.path.join(tls, "cert.pem"), "--body", fixture, "--timeout-ms", "20000"]
        if pin:
            cmd = ["taskset", "-c", str(LOAD_CPU)] + cmd + ["--cpu", str(SERVER_CPU)]
        cmd += ["--"] + impl.argv_of_port(self.port)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.logf, text=True)
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(timeout=30)
            raise RuntimeError("%s did not start (loadgen ready exited %s)" %
                               (impl.name, self.proc.returncode))
        info = json.loads(line)
        self.pid, self.ready_ms = info["pid"], info["ready_ms"]
        if self.ready_ms < 0:
            raise RuntimeError("%s never answered" % impl.name)

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
        self.logf.close()


def loadgen(bins, tls, port, mode, fixture, *args):
    cmd = ["taskset", "-c", str(LOAD_CPU), bins["loadgen"], mode, "--port", str(port), "--ca",
           os.path.join(tls, "cert.pem"), "--body", fixture] + [str(a) for a in args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if not p.stdout.strip():
        raise RuntimeError("loadgen %s failed: %s" % (mode, p.stderr))
    return json.loads(p.stdout)


# ---- the peer's patch has the same effect as ours ----

def quantity_bytes(q):
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi|Ti|k|M|G|T)?", str(q))
    if not m:
        return q
    mult = {None: 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6,
            "G": 10**9, "T": 10**12}[m.group(2)]
    return int(m.group(1)) * mult


def normalised(pod, keep_resolved=False):
    """The pod as the API server would store it: quantities compared by value, the annotation
    (which records each webhook's own breakdown) dropped unless keep_resolved, and what the peer's
    typed round trip changes without effect ignored: a null creationTimestamp removed, an empty
    status added (the API server sets both itself)."""
    pod = copy.deepcopy(pod)
    ann = pod.get("metadata", {}).get("annotations", {})
    if not keep_resolved:
        ann.pop(RESOLVED, None)
    if pod.get("status") == {}:
        del pod["status"]
    if pod.get("metadata", {}).get("creationTimestamp", 0) is None:
        del pod["metadata"]["creationTimestamp"]
    for c in pod["spec"].get("containers", []):
        for part in ("limits", "requests"):
            res = c.get("resources", {}).get(part, {})
            for k in list(res):
                res[k] = quantity_bytes(res[k])
    return pod


def post(port, ctx, body):
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    conn.request("POST", "/mutate?timeout=10s", body=body,
                 headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    if r.status != 200:
        raise RuntimeError("HTTP %d: %s" % (r.status, data[:200]))
    return json.loads(data)["response"]


def check_equivalence(servers, fx, tls):
    ctx = ssl.create_default_context(cafile=os.path.join(tls, "cert.pem"))
    report = {}
    for name in FIXTURES:
        with open(os.path.join(fx, name + ".json"), "rb") as f:
            body = f.read()
        obj = json.loads(body)["request"]["object"]
        results = {}
        for impl, srv in servers.items():
            resp = post(srv.port, ctx, body)
            if not resp.get("allowed") or "patch" not in resp:
                raise RuntimeError("%s did not patch %s: %s" % (impl, name, resp))
            patch = json.loads(base64.b64decode(resp["patch"]))
            results[impl] = (jsonpatch.apply_patch(obj, patch), patch, resp.get("warnings", []))
        keep = name in SAME_ANNOTATION
        ours, peer = normalised(results["ours"][0], keep), normalised(results["peer"][0], keep)
        if ours != peer:
            diff = jsonpatch.make_patch(ours, peer).patch
            raise RuntimeError("the peer's patch differs from ours on %s: %s" % (name, diff[:5]))
        if normalised(results["ours"][0]) == normalised(obj):
            raise RuntimeError("no change on %s" % name)
        report[name] = {"ours_ops": len(results["ours"][1]), "peer_ops": len(results["peer"][1]),
                        "ours_warnings": len(results["ours"][2]),
                        "peer_warnings": len(results["peer"][2])}
    return report


# ---- one round of one implementation ----

def measure(impl, bins, fx, tls, prof, hint):
    f5k = os.path.join(fx, "jm-5k.json")
    srv = Server(impl, bins, tls, f5k)
    res = {"ready_ms": srv.ready_ms}
    try:
        time.sleep(1.0)
        res["rss_idle_mb"] = status_kb(srv.pid, "VmRSS") / 1024
        res["private_idle_mb"] = private_kb(srv.pid) / 1024
        sampler = RssSampler(srv.pid)
        sampler.start()
        for fixture in FIXTURES:
            for rate in (RATES if fixture == "jm-5k" else [OTHER_RATES[fixture]]):
                dur = prof["dur_2000"] if (fixture, rate) == ("jm-5k", 2000) else prof["dur"]
                c0 = cpu_seconds(srv.pid)
                r = loadgen(bins, tls, srv.port, "rate", os.path.join(fx, fixture + ".json"),
                            "--rate", rate, "--duration", dur, "--warmup", prof["warmup"])
                c1 = cpu_seconds(srv.pid)
                answered = r["ok"] + r["errors"] + r["timeouts"]
                r["cpu_us_per_request"] = (c1 - c0) * 1e6 / max(answered, 1)
                r["sustained"] = sustained(r)
                if not r["recorded"]:
                    for k in ("p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms"):
                        r[k] = None
                res["%s@%d" % (fixture, rate)] = r
        sampler.stop.set()
        sampler.join()
        res["rss_loaded_mb"] = sampler.max_kb / 1024
        for resume in (False, True):
            c0 = cpu_seconds(srv.pid)
            args = ["--count", prof["handshakes"]] + (["--resume"] if resume else [])
            h = loadgen(bins, tls, srv.port, "handshake", f5k, *args)
            c1 = cpu_seconds(srv.pid)
            h["cpu_us_per_connection"] = (c1 - c0) * 1e6 / h["count"]
            res["handshake_resumed" if resume else "handshake_full"] = h
        if not hint:  # the first round starts the search above the fixed rates it sustained
            hint = max([rate for rate in RATES if res["jm-5k@%d" % rate]["sustained"]] or [1000]) * 1.5
        res["max_rps"], res["max_rps_steps"] = max_rate(bins, tls, srv, f5k, prof, hint)
        res["rss_hwm_mb"] = status_kb(srv.pid, "VmHWM") / 1024
    finally:
        srv.stop()
    return res


def sustained(r):
    return (r["errors"] + r["timeouts"] + r["unanswered"] == 0 and r["recorded"] > 0
            and r["p99_ms"] <= SUSTAINED_P99_MS and r["achieved_rps"] >= 0.97 * r["rate"])


def max_rate(bins, tls, srv, fixture, prof, hint):
    """The highest constant rate that is sustained: from a start (the previous round's result, or
    above the fixed rates this round sustained), grow by 1.25x until a step fails (or shrink until
    one passes), then bisect between the last pass and the first failure."""
    steps = []

    def attempt(rate):
        r = loadgen(bins, tls, srv.port, "rate", fixture, "--rate", int(rate), "--duration",
                    prof["step"], "--warmup", 0.5, "--connections", 64)
        ok = sustained(r)
        steps.append({"rate": int(rate), "ok": ok, "p99_ms": r["p99_ms"],
                      "errors": r["errors"] + r["timeouts"] + r["unanswered"]})
        time.sleep(0.5 if ok else 1.5)
        return ok

    lo, hi = 0, None
    rate = hint * 0.9
    for _ in range(14):
        if attempt(rate):
            lo = rate
            if hi:
                break
            rate *= 1.25
        else:
            hi = rate
            if lo:
                break
            rate /= 1.25
            if rate < 100:
                return 0, steps
    for _ in range(prof["bisect"]):
        mid = (lo + hi) / 2
        if attempt(mid):
            lo = mid
        else:
            hi = mid
    return int(lo), steps


# ---- in-process figures ----

def micro(bins, fx, prof):
    files = [os.path.join(fx, n + ".json") for n in FIXTURES]
    p = run(["taskset", "-c", str(SERVER_CPU), bins["micro"], "--rounds", str(prof["micro_rounds"]),
             "--iterations", str(prof["micro_iterations"])] + files)
    res = json.loads(p.stdout)
    if shutil.which("valgrind"):
        for name in FIXTURES:
            n = 20
            outfile = os.path.join(os.path.dirname(fx), "callgrind.%s.out" % name)
            run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + outfile,
                 "--toggle-collect=measured_reviews", bins["micro"], "--callgrind", str(n),
                 os.path.join(fx, name + ".json")])
            total = 0
            with open(outfile) as f:
                for line in f:
                    if line.startswith("totals:") or line.startswith("summary:"):
                        total = int(line.split()[1])
            res[name]["instructions"] = total // n
    return res


CM_HOLD = 1000


def cm_lookup(bins, fx, out, prof):
    """The ConfigMap lookup against the local control plane, when it is up (bench-cm starts it)."""
    env = os.environ.get("KUBECONFIG")
    kubectl = os.environ.get("FMW_KUBECTL")
    if not env or not kubectl:
        return None
    ns = "fmw-bench"
    subprocess.run([kubectl, "create", "namespace", ns], capture_output=True)
    with open(os.path.join(fx, "configmap.json")) as f:
        cm = json.load(f)
    cm["metadata"]["namespace"] = ns
    path = os.path.join(out, "configmap-%s.json" % ns)
    with open(path, "w") as f:
        json.dump(cm, f)
    run([kubectl, "apply", "-f", path])
    with open(os.path.join(fx, "jm-cm.json")) as f:
        review = json.load(f)
    review["request"]["namespace"] = ns
    review["request"]["object"]["metadata"]["namespace"] = ns
    fixture = os.path.join(out, "jm-cm-%s.json" % ns)
    with open(fixture, "w") as f:
        json.dump(review, f, separators=(",", ":"))
    # What a watch would hold: CM_HOLD ConfigMaps of 10 KB (a flink-conf.yaml of 10 KB each).
    conf = "".join("# padding line %04d of a 10 KB flink-conf.yaml\n" % i for i in range(205))[:10240]
    held = {"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "%s-%d" % (cm["metadata"]["name"], i), "namespace": ns},
         "data": {"flink-conf.yaml": conf}} for i in range(CM_HOLD)]}
    held_path = os.path.join(out, "configmaps-held-%s.json" % ns)
    with open(held_path, "w") as f:
        json.dump(held, f)
    run([kubectl, "create", "-f", held_path])
    try:
        p = run(["taskset", "-c", str(SERVER_CPU), bins["micro"], "--cm-kubeconfig", env,
                 "--cm-name", "%s/%s" % (ns, cm["metadata"]["name"]), "--cm-hold", str(CM_HOLD),
                 "--rounds", str(prof["cm_rounds"]), "--iterations", str(prof["micro_iterations"]),
                 fixture])
        return json.loads(p.stdout)
    finally:
        subprocess.run([kubectl, "delete", "namespace", ns, "--wait=false"], capture_output=True)


# ---- report ----

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def figure(ours, peer, ratio="ours/peer", digits=3):
    ours = [x for x in ours if x is not None]
    peer = [x for x in peer if x is not None]
    o, p = med(ours), med(peer)
    r = None
    if o is not None and p:
        r = o / p if ratio == "ours/peer" else p / o
    rnd = lambda v: None if v is None else round(v, digits)
    return {"ours": rnd(o), "peer": rnd(p), "ratio": rnd(r), "ratio_is": ratio,
            "spread": [rnd(min(ours)), rnd(max(ours))] if ours else None,
            "peer_spread": [rnd(min(peer)), rnd(max(peer))] if peer else None}


def summarise(rounds, micro_res, cm_res):
    get = lambda impl, fn: [fn(r[impl]) for r in rounds]
    both = lambda fn, ratio="ours/peer": figure(get("ours", fn), get("peer", fn), ratio)
    f = {}
    f["cpu_us_per_request"] = both(lambda r: r["jm-5k@2000"]["cpu_us_per_request"])
    f["max_rps"] = both(lambda r: r["max_rps"])
    for rate in RATES:
        for p in ("p50", "p99", "p999"):
            f["%s_ms_at_%d" % (p, rate)] = both(lambda r, k="%s_ms" % p, rt=rate: r["jm-5k@%d" % rt][k])
        f["cpu_us_per_request_at_%d" % rate] = both(
            lambda r, rt=rate: r["jm-5k@%d" % rt]["cpu_us_per_request"])
    for name, rate in OTHER_RATES.items():
        key = "%s@%d" % (name, rate)
        f["p99_ms_at_%d_%s" % (rate, name)] = both(lambda r, k=key: r[k]["p99_ms"])
        f["cpu_us_per_request_%s" % name] = both(lambda r, k=key: r[k]["cpu_us_per_request"])
    # Which fixed-rate runs fell behind in some round (their latencies then measure a queue).
    f["not_sustained"] = sorted({"%s %s" % (impl, k) for r in rounds for impl in ("ours", "peer")
                                 for k, v in r[impl].items()
                                 if isinstance(v, dict) and v.get("sustained") is False})
    f["rss_idle_mb"] = both(lambda r: r["rss_idle_mb"])
    f["rss_loaded_mb"] = both(lambda r: r["rss_loaded_mb"])
    f["rss_peak_mb"] = both(lambda r: r["rss_hwm_mb"])
    f["private_idle_mb"] = both(lambda r: r["private_idle_mb"])
    f["ready_ms"] = both(lambda r: r["ready_ms"])
    for kind in ("full", "resumed"):
        f["handshake_us_%s" % kind] = both(lambda r, k=kind: r["handshake_" + k]["p50_us"])
        f["handshake_cpu_us_%s" % kind] = both(
            lambda r, k=kind: r["handshake_" + k]["cpu_us_per_connection"]
            - r["jm-5k@2000"]["cpu_us_per_request"])
    for name in FIXTURES:
        m = micro_res[name]
        f["ns_per_review_%s" % name] = {"ours": m["ns_per_op"], "peer": None, "ratio": None,
                                        "spread": [m["min"], m["max"]]}
        if "instructions" in m:
            # Deterministic: one count per run, so the spread is that count.
            f["instructions_per_review_%s" % name] = {"ours": m["instructions"], "peer": None,
                                                      "ratio": None,
                                                      "spread": [m["instructions"]] * 2}
    if "instructions" in micro_res["jm-5k"]:
        f["instructions_per_review"] = dict(f["instructions_per_review_jm-5k"])
    else:
        f["instructions_per_review"] = {"ours": None, "peer": None, "ratio": None, "spread": None}
    if cm_res:
        hold = cm_res.get("hold")
        if hold:
            f["cm_hold_mb"] = {"ours": round((hold["rss_kib_after"] - hold["rss_kib_before"]) / 1024, 1),
                               "peer": None, "ratio": None, "spread": None}
        for k, v in cm_res.items():
            if k == "hold":
                continue
            f["cm_%s_us" % k] = {"ours": round(v["ns_per_op"] / 1e3, 2), "peer": None,
                                 "ratio": None,
                                 "spread": [round(v["min"] / 1e3, 2), round(v["max"] / 1e3, 2)]}
    return f


ROWS = [
    ("cpu_us_per_request", "server CPU per request, µs (5 KB pod, 2,000/s)", "≤ 0.5× peer, ≤ 100"),
    ("max_rps", "max sustained rate, req/s (one core)", "≥ 2× peer, ≥ 8,000"),
    ("p50_ms_at_500", "p50 at 500/s, ms", ""),
    ("p99_ms_at_500", "p99 at 500/s, ms", ""),
    ("p50_ms_at_2000", "p50 at 2,000/s, ms", ""),
    ("p99_ms_at_2000", "p99 at 2,000/s, ms", "≤ 2"),
    ("p999_ms_at_2000", "p99.9 at 2,000/s, ms", ""),
    ("p50_ms_at_5000", "p50 at 5,000/s, ms", ""),
    ("p99_ms_at_5000", "p99 at 5,000/s, ms", ""),
    ("p999_ms_at_5000", "p99.9 at 5,000/s, ms", ""),
    ("cpu_us_per_request_two-container", "CPU per request, 2-container pod (2,000/s), µs", ""),
    ("p99_ms_at_2000_two-container", "p99 at 2,000/s, 2-container pod, ms", ""),
    ("cpu_us_per_request_jm-64k", "CPU per request, 64 KB pod (500/s), µs", ""),
    ("p99_ms_at_500_jm-64k", "p99 at 500/s, 64 KB pod, ms", ""),
    ("cpu_us_per_request_tm-5k", "CPU per request, TaskManager pod (2,000/s), µs", ""),
    ("p99_ms_at_2000_tm-5k", "p99 at 2,000/s, TaskManager pod, ms", ""),
    ("rss_idle_mb", "RSS idle, MB", "≤ 8, ≤ 0.25× peer"),
    ("rss_loaded_mb", "RSS under load, MB", "≤ 16, ≤ 0.25× peer"),
    ("private_idle_mb", "private memory idle (USS), MB", ""),
    ("rss_peak_mb", "RSS peak (VmHWM, max-rate search included), MB", ""),
    ("ready_ms", "exec to first answered review, ms", "≤ 50"),
    ("handshake_us_full", "TLS full handshake, client µs (p50)", ""),
    ("handshake_us_resumed", "TLS resumed handshake, client µs (p50)", ""),
    ("handshake_cpu_us_full", "server CPU per full handshake, µs", ""),
    ("handshake_cpu_us_resumed", "server CPU per resumed handshake, µs", ""),
    ("ns_per_review_jm-5k", "in-process review, 5 KB pod, ns", ""),
    ("ns_per_review_two-container", "in-process review, 2-container pod, ns", ""),
    ("ns_per_review_jm-64k", "in-process review, 64 KB pod, ns", ""),
    ("ns_per_review_tm-5k", "in-process review, TaskManager pod, ns", ""),
    ("instructions_per_review_jm-5k", "instructions per review, 5 KB pod", ""),
    ("instructions_per_review_two-container", "instructions per review, 2-container pod", ""),
    ("instructions_per_review_jm-64k", "instructions per review, 64 KB pod", ""),
    ("instructions_per_review_tm-5k", "instructions per review, TaskManager pod", ""),
    ("cm_lookup_miss_us", "ConfigMap lookup, read from the API server (the default), µs", ""),
    ("cm_lookup_hit_us", "ConfigMap lookup, copy held in memory (as a watch holds it), µs", ""),
    ("cm_review_miss_us", "review with ConfigMap, read from the API server, µs", ""),
    ("cm_review_hit_us", "review with ConfigMap, copy held in memory, µs", ""),
    ("cm_hold_mb", "RSS to hold 1,000 ConfigMaps of 10 KB (what a watch keeps), MB", ""),
]


def fmt(v):
    if v is None:
        return "—"
    if isinstance(v, float) and abs(v) < 10:
        return "%.3g" % v
    if isinstance(v, (int, float)) and abs(v) >= 1000:
        return "{:,.0f}".format(v)
    return "%.1f" % v if isinstance(v, float) else str(v)


def table(result):
    lines = ["| figure | ours | peer | ratio | ours min–max | peer min–max | target |",
             "|---|---:|---:|---:|---:|---:|---|"]
    lagging = result["figures"].get("not_sustained", [])
    span = lambda sp: "%s–%s" % (fmt(sp[0]), fmt(sp[1])) if sp else "—"
    for key, label, target in ROWS:
        f = result["figures"].get(key)
        if not f:
            continue
        ratio = "—"
        if f.get("ratio") is not None:
            ratio = "%.3g×" % f["ratio"]
        m = re.match(r"(?:p\d+_ms|cpu_us_per_request)_at_(\d+)(?:_(.*))?$", key)
        run_key = m and "%s@%s" % (m.group(2) or "jm-5k", m.group(1))
        mark = lambda impl: " †" if run_key and "%s %s" % (impl, run_key) in lagging else ""
        lines.append("| %s | %s%s | %s%s | %s | %s | %s | %s |" % (
            label, fmt(f["ours"]), mark("ours"), fmt(f["peer"]), mark("peer"), ratio,
            span(f.get("spread")), span(f.get("peer_spread")), target))
    if lagging:
        lines.append("")
        lines.append("† the server fell behind that rate in at least one round (errors, or p99 over "
                     "%d ms): the latency measures its queue." % SUSTAINED_P99_MS)
    return "\n".join(lines)


def targets(result):
    """Each target of ROWS against the figures: met by every round (the worst of the spread),
    by the median only, or not. Ratios to the peer are checked on their median."""
    lines = ["| target | result: median (min–max) | met? |", "|---|---|---|"]
    for key, label, target in ROWS:
        f = result["figures"].get(key)
        if not f or not target:
            continue
        for clause in re.split(r",\s*(?=[≤≥])", target):  # "≥ 2× peer, ≥ 8,000"
            m = re.match(r"\s*(≤|≥)\s*([\d.,]+)(×\s*peer)?\s*$", clause)
            if not m:
                continue
            op, bound, vs_peer = m.group(1), float(m.group(2).replace(",", "")), bool(m.group(3))
            ok = (lambda v: v <= bound) if op == "≤" else (lambda v: v >= bound)
            if vs_peer:
                if f.get("ratio") is None:
                    continue
                median, worst, shown = f["ratio"], None, "%.3g×" % f["ratio"]
            else:
                sp = f.get("spread")
                median = f["ours"]
                if median is None:
                    continue
                worst = (sp[1] if op == "≤" else sp[0]) if sp else None
                shown = "%s (%s–%s)" % (fmt(median), fmt(sp[0]), fmt(sp[1])) if sp else fmt(median)
            met = ("yes" if ok(median) and (worst is None or ok(worst))
                   else "median only" if ok(median) else "**no**")
            lines.append("| %s %s %s%s | %s | %s |" % (label, op, m.group(2),
                                                       "× peer" if vs_peer else "", shown, met))
    return "\n".join(lines)


def header_of(result):
    return "%s — %s, %d round%s%s, load average %.2f before / %.2f after" % (
        result["date"], result["machine"], result["rounds"], "s" if result["rounds"] > 1 else "",
        " (quick)" if result["quick"] else "", result["load_average_before"][0],
        result["load_average_after"][0])


def readme_text(result):
    """What README.md shows between its bench-table markers: the table and the targets."""
    return (header_of(result) + "\n\n" + table(result) + "\n\nTargets, from the same run:\n\n"
            + targets(result))


def update_readme(md):
    path = os.path.join(ROOT, "README.md")
    with open(path) as f:
        text = f.read()
    begin, end = "<!-- bench-table:begin -->", "<!-- bench-table:end -->"
    if begin not in text or end not in text:
        log("README.md has no bench-table markers; not updated")
        return
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    with open(path, "w") as f:
        f.write(head + begin + "\n" + md + "\n" + end + tail)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--readme", action="store_true", help="write the table into README.md")
    ap.add_argument("--readme-from", metavar="RESULT_JSON",
                    help="write README.md's table and targets from a result.json of an earlier "
                         "run, and run nothing")
    a = ap.parse_args()
    if a.readme_from:
        with open(a.readme_from) as f:
            result = json.load(f)
        update_readme(readme_text(result))
        return
    if not 1 <= a.rounds <= 20:
        sys.exit("bench: --rounds 1..20")
    out = os.path.join(a.build, "bench")
    os.makedirs(out, exist_ok=True)
    bins = {"webhook": os.path.join(a.build, "bin", "flink-memory-webhook"),
            "loadgen": os.path.join(out, "bin", "loadgen"),
            "micro": os.path.join(out, "bin", "micro"),
            "peer": os.path.join(out, "bin", "peer")}
    if a.quick:
        prof = {"dur": 1.0, "dur_2000": 2, "warmup": 0.5, "step": 1.0, "bisect": 2,
                "handshakes": 60, "micro_rounds": 5, "micro_iterations": 300, "cm_rounds": 3}
    else:
        prof = {"dur": 3, "dur_2000": 6, "warmup": 1, "step": 2, "bisect": 3,
                "handshakes": 300, "micro_rounds": 15, "micro_iterations": 1000, "cm_rounds": 7}
    started = time.time()
    load_before = loadavg()
    log("machine: %s; load average %s" % (machine(), load_before))
    fx, tls, kubeconfig = setup(out, bins)
    all_impls = impls(bins, tls, kubeconfig)

    log("checking that the peer's patch has the same effect as ours")
    servers = {}
    try:
        for impl in all_impls:
            servers[impl.name] = Server(impl, bins, tls, os.path.join(fx, "jm-5k.json"), pin=False)
        equivalence = check_equivalence(servers, fx, tls)
    finally:
        for s in servers.values():
            s.stop()

    log("in-process pipeline (ns/op, callgrind)")
    micro_res = micro(bins, fx, prof)
    cm_res = cm_lookup(bins, fx, out, prof)

    rounds, hints = [], {}
    for i in range(a.rounds):
        order = all_impls if i % 2 == 0 else list(reversed(all_impls))
        rnd = {"load_average": loadavg()}
        for impl in order:
            log("round %d/%d: %s" % (i + 1, a.rounds, impl.name))
            rnd[impl.name] = measure(impl, bins, fx, tls, prof, hints.get(impl.name))
            hints[impl.name] = rnd[impl.name]["max_rps"] or None
            r = rnd[impl.name]
            # p99 is None when a run recorded no answer (a server far behind the rate).
            p99 = r["jm-5k@2000"]["p99_ms"]
            log("  ready %.1f ms, idle %.1f MB, loaded %.1f MB, p99@2000 %s ms, "
                "cpu %.1f us/req (TaskManager pod %.1f), max %d req/s" % (
                    r["ready_ms"], r["rss_idle_mb"], r["rss_loaded_mb"],
                    "—" if p99 is None else "%.3f" % p99, r["jm-5k@2000"]["cpu_us_per_request"],
                    r["tm-5k@2000"]["cpu_us_per_request"], r["max_rps"]))
        rounds.append(rnd)

    result = {
        "machine": machine(),
        "load_average_before": load_before,
        "load_average_after": loadavg(),
        "load_average_rounds": [r["load_average"] for r in rounds],
        "rounds": a.rounds,
        "quick": a.quick,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "duration_s": round(time.time() - started, 1),
        "pinning": {"server_cpu": SERVER_CPU, "load_generator_cpu": LOAD_CPU},
        "equivalence": equivalence,
        "figures": summarise(rounds, micro_res, cm_res),
        "raw": {"rounds": rounds, "micro": micro_res, "cm": cm_res},
    }
    if not cm_res:
        result["cm_skipped"] = "no local control plane (run make bench-cm)"
    with open(os.path.join(out, "result.json"), "w") as f:
        json.dump(result, f, indent=1)
    md = table(result)
    header = header_of(result)
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write(header + "\n\n" + md + "\n")
    print(header)
    print()
    print(md)
    if a.readme:
        update_readme(readme_text(result))


if __name__ == "__main__":
    main()
