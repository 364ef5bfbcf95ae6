"""What the Python suites on the local control plane share (tests/chart's cluster tests and
tests/node): the repository's places, kubectl and helm as build/cluster/env names them, Kubernetes
quantities, and polling.

The suites run under tests/cluster/with-cluster.sh, which sources build/cluster/env (FMW_KUBECTL,
FMW_HELM, KUBECONFIG).
"""
import json
import os
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHART = os.path.join(ROOT, "charts", "flink-memory-webhook")
KUBECTL = os.environ.get("FMW_KUBECTL", "kubectl")
HELM = os.environ.get("FMW_HELM", "helm")
# The annotation the webhook writes on each pod it sized (docs/ARCHITECTURE.md).
RESOLVED = "flink-memory-webhook/resolved"
UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def qty(text):
    """A Kubernetes quantity in bytes, of the forms the chart and the webhook write: a plain
    number of bytes or one with a binary suffix."""
    text = str(text)
    for suffix, n in UNITS.items():
        if text.endswith(suffix):
            return int(text[:-2]) * n
    return int(text)


def run(cmd, *args, input=None, check=True, timeout=180):
    """cmd with args; its stdout and stderr in the AssertionError when it fails and check is set."""
    p = subprocess.run([cmd, *args], input=input, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"{os.path.basename(cmd)} {' '.join(args)}:\n{p.stdout}\n{p.stderr}")
    return p


def kubectl(*args, **kw):
    return run(KUBECTL, *args, **kw)


def helm(*args, **kw):
    return run(HELM, *args, **kw)


def get(ns, kind, name):
    return json.loads(kubectl("get", "-n", ns, kind, name, "-o", "json").stdout)


def wait(what, check, timeout=180, every=0.5):
    """check() until it returns something true, which is returned; an AssertionError naming what
    after timeout seconds."""
    deadline = time.time() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.time() > deadline:
            raise AssertionError(f"{what}: not after {timeout}s")
        time.sleep(every)
