#!/usr/bin/env python3
"""Quick performance check of pkg/server through server-testd (not a test suite; `make bench`
is the real benchmark). Prints, for POST /mutate with a 1.8 KB AdmissionReview-sized body over
TLS keep-alive:

  - idle RSS of a fresh daemon;
  - CPU time per request under saturation (wrk, 16 connections), and the requests per second
    that makes on one dedicated core: CPU time is what the daemon consumed, so the figure holds
    even when other work shares the machine;
  - latency at a fixed 2,000 req/s (hey, 20 connections x 100 req/s): the client's view and the
    server's own histogram (request read -> response queued), as quantile upper bounds.

The daemon is pinned to CPU 0 and the load generator to CPU 1. Needs wrk and hey (Debian
packages of those names). Usage: perf.py --testd build/tests/server-testd
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import ssl

BODY = {
    "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
    "request": {"uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "object": {
        "metadata": {"name": "jm", "labels": {"component": "jobmanager"}},
        "spec": {"containers": [{
            "name": "jobmanager", "image": "flink:1.17.2", "args": ["jobmanager"],
            "resources": {"limits": {"memory": "1600Mi"}},
            "env": [{"name": "E%d" % i, "value": "v" * 20} for i in range(30)]}]}}}}


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def histogram(port, route):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    text = urllib.request.urlopen("https://127.0.0.1:%d/metrics" % port, context=ctx).read()
    buckets = []
    for m in re.finditer(r'http_request_duration_seconds_bucket\{route="%s",le="([^"]+)"\} (\d+)'
                         % re.escape(route), text.decode()):
        buckets.append((float(m.group(1)), int(m.group(2))))
    return buckets


def quantile(buckets, base, q):
    total = buckets[-1][1] - base[-1][1]
    for (le, n), (_, n0) in zip(buckets, base):
        if n - n0 >= q * total:
            return le
    return float("inf")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--testd", required=True)
    p.add_argument("--seconds", type=int, default=10)
    args = p.parse_args()
    for tool in ("wrk", "hey", "openssl", "taskset"):
        if not shutil.which(tool):
            sys.exit("perf.py needs %s (apt-get install %s)" % (tool, tool))
    work = tempfile.mkdtemp(prefix="fmw-perf-")
    cert, key = os.path.join(work, "c.pem"), os.path.join(work, "k.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert, "-days", "1",
                    "-subj", "/CN=localhost"], check=True, capture_output=True)
    body = os.path.join(work, "body.json")
    with open(body, "w") as f:
        json.dump(BODY, f)
    lua = os.path.join(work, "post.lua")
    with open(lua, "w") as f:
        f.write('local f = io.open("%s", "rb")\nwrk.method = "POST"\nwrk.body = f:read("*a")\n'
                'f:close()\nwrk.headers["Content-Type"] = "application/json"\n' % body)
    ports = os.path.join(work, "ports")
    d = subprocess.Popen(["taskset", "-c", "0", args.testd, "--cert", cert, "--key", key,
                          "--port", "0", "--port-file", ports, "--drain-delay-ms", "0",
                          "--log-level", "warn"], stderr=subprocess.DEVNULL)
    try:
        while not os.path.exists(ports):
            time.sleep(0.01)
        port = int(open(ports).read().split()[0])
        time.sleep(0.5)
        url = "https://127.0.0.1:%d/mutate?timeout=10s" % port
        print("body: %d bytes; daemon pinned to CPU 0, load generator to CPU 1"
              % os.path.getsize(body))
        print("idle RSS: %.1f MiB" % (rss_kb(d.pid) / 1024))

        c0 = cpu_seconds(d.pid)
        out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c16", "-d%ds" % args.seconds,
                              "-s", lua, "--latency", url], capture_output=True, text=True).stdout
        cpu = cpu_seconds(d.pid) - c0
        n = int(re.search(r"(\d+) requests in", out).group(1))
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        print("saturation (wrk -c16): %.0f req/s wall clock; %.1f us CPU/request -> %.0f req/s "
              "per dedicated core" % (rps, cpu / n * 1e6, n / cpu))
        print("RSS after load: %.1f MiB" % (rss_kb(d.pid) / 1024))

        base = histogram(port, "/mutate")
        out = subprocess.run(["taskset", "-c", "1", "hey", "-z", "%ds" % args.seconds, "-c", "20",
                              "-q", "100", "-m", "POST", "-T", "application/json", "-D", body, url],
                             capture_output=True, text=True).stdout
        after = histogram(port, "/mutate")
        got = dict(re.findall(r"(\d+)% in ([\d.]+) secs", out))
        rate = re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)
        print("fixed rate (hey 20x100 req/s): %s req/s; client p50 %.2f ms, p99 %.2f ms"
              % (rate, float(got["50"]) * 1e3, float(got["99"]) * 1e3))
        print("  server-side p50 <= %g ms, p99 <= %g ms, p99.9 <= %g ms (histogram bounds)"
              % tuple(quantile(after, base, q) * 1e3 for q in (0.5, 0.99, 0.999)))
    finally:
        d.terminate()
        d.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
