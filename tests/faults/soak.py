#!/usr/bin/env python3
"""Soak benchmark (make soak; not part of CI): the webhook under a steady rate of reviews for a
long time, with its ConfigMaps served by a loopback stub API that changes one of them every
10 seconds. Reports the error count, latency percentiles and the RSS drift (RSS at the end minus
RSS after the first minute), and writes them as JSON to build/soak/result.json.

Traffic goes to 127.0.0.1 only; the run stops by itself after --minutes.
"""
import argparse
import http.client
import json
import os
import shutil
import ssl
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "hostile"))
from harness import ROOT, StubAPI, Webhook, certs, jm_pod, props_pod, review  # noqa: E402


def bodies():
    """A rotation of realistic and unusual reviews with what each must get."""
    out = []
    for i in range(8):
        out.append((json.dumps(review(jm_pod(configmap=f"cm-{i}"))), "patch"))
    out.append((json.dumps(review(props_pod("jobmanager.memory.process.size: 3g"))), "patch"))
    out.append((json.dumps(review(props_pod("jobmanager.memory.process.size: -1g"))), "deny"))
    out.append((json.dumps(review(jm_pod(configmap="missing"))), "allow"))
    out.append(('{"apiVersion": "admission.k8s.io/v1"}', "400"))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--rate", type=float, default=100, help="reviews per second")
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "soak", "result.json"))
    a = ap.parse_args()

    d = tempfile.mkdtemp(prefix="fmw-soak-")
    certs(d)
    api = StubAPI()
    for i in range(8):
        api.configmaps[("flink", f"cm-{i}")] = {
            "flink-conf.yaml": f"jobmanager.memory.process.size: {1024 + 64 * i}m\n"}
    wh = Webhook(d, api.kubeconfig(os.path.join(d, "kubeconfig")), "--log-level", "warn")
    wh.start()
    work = bodies()
    lock = threading.Lock()
    stats = {"sent": 0, "errors": 0, "error_samples": [], "latencies": []}
    stop_at = time.time() + a.minutes * 60
    start = time.time()
    interval = a.connections / a.rate  # each connection's own period

    def worker(k):
        ctx = ssl.create_default_context(cafile=os.path.join(d, "ca.crt"))
        ctx.check_hostname = False
        conn = None
        n = 0
        next_t = start + k * interval / a.connections
        while True:
            now = time.time()
            if now >= stop_at:
                break
            if next_t > now:
                time.sleep(next_t - now)
            next_t += interval
            body, want = work[(n * a.connections + k) % len(work)]
            n += 1
            t0 = time.time()
            ok, why = False, ""
            try:
                if conn is None:
                    conn = http.client.HTTPSConnection("127.0.0.1", wh.port, timeout=10,
                                                       context=ctx)
                conn.request("POST", "/mutate?timeout=5s", body=body,
                             headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                data = r.read()
                if want == "400":
                    ok = r.status == 400
                elif r.status == 200:
                    resp = json.loads(data)["response"]
                    ok = {"patch": resp["allowed"] and "patch" in resp,
                          "deny": not resp["allowed"],
                          "allow": resp["allowed"] and "patch" not in resp}[want]
                why = f"{want}: {r.status} {data[:160]!r}"
            except Exception as e:  # noqa: BLE001 — every failure is counted and sampled
                why = f"{want}: {type(e).__name__}: {e}"
                conn = None
            with lock:
                stats["sent"] += 1
                stats["latencies"].append(time.time() - t0)
                if not ok:
                    stats["errors"] += 1
                    if len(stats["error_samples"]) < 10:
                        stats["error_samples"].append(why)

    def churn():
        v = 0
        while time.time() < stop_at:
            time.sleep(10)
            v += 1
            api.configmaps[("flink", "cm-0")] = {
                "flink-conf.yaml": f"jobmanager.memory.process.size: {1024 + v % 4 * 64}m\n"}

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(a.connections)]
    threads.append(threading.Thread(target=churn, daemon=True))
    for t in threads:
        t.start()
    rss = []
    while time.time() < stop_at:
        time.sleep(min(10, max(0.1, stop_at - time.time())))
        rss.append((round(time.time() - start), wh.rss_kib()))
        with lock:
            print(f"soak: {rss[-1][0]:>5}s sent {stats['sent']} errors {stats['errors']} "
                  f"rss {rss[-1][1]} KiB", flush=True)
    for t in threads[:-1]:
        t.join(timeout=30)
    wh.stop()
    api.close()
    shutil.rmtree(d, ignore_errors=True)

    lat = sorted(stats["latencies"])
    pct = (lambda p: round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 2)) if lat else \
        (lambda p: None)
    warm = next((r for t, r in rss if t >= 60), rss[0][1] if rss else 0)
    result = {"minutes": a.minutes, "rate": a.rate, "sent": stats["sent"],
              "errors": stats["errors"], "error_samples": stats["error_samples"],
              "achieved_rate": round(stats["sent"] / max(1, time.time() - start), 1),
              "latency_ms": {"p50": pct(0.50), "p99": pct(0.99), "max": pct(1.0)},
              "rss_kib": {"after_1_min": warm, "end": rss[-1][1] if rss else 0,
                          "max": max((r for _, r in rss), default=0)},
              "rss_drift_kib": (rss[-1][1] - warm) if rss else 0, "rss_samples": rss}
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps({k: v for k, v in result.items() if k != "rss_samples"}, indent=1))
    print(f"soak: {stats['sent'] - stats['errors']} passed, {stats['errors']} failed")
    return 0 if stats["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
