#!/usr/bin/env python3
"""Structure-aware fuzzing of the admission pipeline through the sanitized CLI.

Byte-level libFuzzer mutations rarely keep an AdmissionReview valid enough to reach the planner's
deeper paths (scripts, env expansion, several ConfigMap sources). This takes the admission corpus
(tests/data/admission/cases.yaml), mutates the pods as JSON — values swapped for tricky ones,
$(VAR) references, sh -c scripts, duplicated or removed containers, wrong types — and runs each
review through `flink-memory review` built with ASan+UBSan (build/asan/bin). A sanitizer report,
a crash, an answer that is not a valid AdmissionReview, or a patch that does not apply fails the
run; the offending review is written to OUT_DIR.

usage: structural.py [--seconds N] [--seed N] [--out DIR]
"""
import argparse
import base64
import copy
import json
import os
import random
import subprocess
import sys
import tempfile
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.path.join(ROOT, "build", "asan", "bin", "flink-memory")

TRICKY = ["", " ", "$(A)", "$(LONG)", "$(EMPTY)", "$$(A)", "$(", "$()", "${A}", "$A", "-Xmx4g",
          "-Xms", "-Xmx", "-XX:MaxMetaspaceSize=", "-XX:MaxDirectMemorySize=99999999999999g",
          "-D", "-Djobmanager.memory.process.size=2g", "-Djobmanager.memory.process.size",
          "jobmanager", "standalone-job", "start-foreground", "kubernetes-jobmanager.sh",
          "/docker-entrypoint.sh", "sh", "-c", "-ec", "bash", "java", "'", "\"", "\\", ";", "&&",
          "|", "#", "\u00e9\u4e2d\U0001F600", "a" * 300, "1e309", "-1", "0", "9223372036854775808",
          "org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint",
          "flink:1.11", "flink:2.1.0-java17", "flink:latest", "flink@sha256:00", "1.17.2",
          "flink-conf.yaml", "config.yaml", "/opt/flink/conf", "session-118", "app-20", "."]
SCRIPTS = ["exec java $(LONG) -Xmx4g -cp x {cls}", "exec /docker-entrypoint.sh jobmanager $(A) "
           "-D jobmanager.memory.process.size=3g", "export X=\"$(A)\"; exec java -Xmx1g {cls}",
           "java $(EMPTY)$(EMPTY) -Xms1g -Xmx2g {cls} && echo '$(A)'", "exec java {cls} -Xmx1g",
           "exec \"java\" '-Xmx8g' \\\n -XX:MaxMetaspaceSize=1g {cls}"]
CLS = "org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint"
ENV = [{"name": "A", "value": "-Xmx3g"}, {"name": "LONG", "value": "-XX:+UseG1GC " * 12},
       {"name": "EMPTY", "value": ""}, {"name": "FLINK_PROPERTIES",
                                        "value": "jobmanager.memory.process.size: 2g"},
       {"name": "_JAVA_OPTIONS", "value": "-Xmx5g $(A)"}, {"name": "FLINK_JM_HEAP", "value": "1g"},
       {"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]


def mutate_value(rng, v):
    r = rng.random()
    if r < 0.5:
        return rng.choice(TRICKY)
    if r < 0.6:
        return rng.choice([None, 7, 1.5, True, [], {}, ["x"]])
    if isinstance(v, str) and v:
        i = rng.randrange(len(v) + 1)
        return v[:i] + rng.choice(TRICKY) + v[i:]
    return v


def walk(obj, path=()):
    yield path, obj
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from walk(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from walk(v, path + (i,))


def set_at(obj, path, value):
    for p in path[:-1]:
        obj = obj[p]
    obj[path[-1]] = value


def containers(pod):
    spec = pod.get("spec")
    if isinstance(spec, dict) and isinstance(spec.get("containers"), list):
        return spec["containers"]
    return []


def mutate(rng, obj):
    pod = obj
    kind = obj.get("kind")
    if kind == "CronJob":
        pod = obj["spec"]["jobTemplate"]["spec"]["template"]
    elif kind != "Pod":
        pod = obj["spec"]["template"]
    for _ in range(rng.randint(1, 4)):
        r = rng.random()
        cs = [c for c in containers(pod) if isinstance(c, dict)]
        if r < 0.25 and cs:
            c = rng.choice(cs)
            c["command"] = ["sh", "-c"]
            c["args"] = [rng.choice(SCRIPTS).format(cls=CLS)]
        elif r < 0.45 and cs:
            c = rng.choice(cs)
            c.setdefault("env", [])
            if isinstance(c["env"], list):
                c["env"] += rng.sample(ENV, rng.randint(1, 4))
        elif r < 0.55 and cs:
            containers(pod).append(copy.deepcopy(rng.choice(cs)))
        elif r < 0.6 and cs:
            containers(pod).remove(rng.choice(cs))
        else:
            nodes = [p for p, _ in walk(obj) if p and p[0] != "kind"]
            if nodes:
                path = rng.choice(nodes)
                cur = obj
                for p in path:
                    cur = cur[p]
                set_at(obj, path, mutate_value(rng, cur))
    return obj


def review_of(obj, rng):
    group = {"Pod": "", "Deployment": "apps", "StatefulSet": "apps", "ReplicaSet": "apps",
             "Job": "batch", "CronJob": "batch"}.get(obj.get("kind"), "")
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u-%d" % rng.randrange(1 << 30),
                        "kind": {"group": group, "version": "v1", "kind": obj.get("kind")},
                        "namespace": "flink", "operation": rng.choice(["CREATE", "CREATE",
                                                                       "UPDATE"]),
                        "object": obj}}


def check(out, review):
    doc = json.loads(out)
    r = doc["response"]
    assert r["uid"] == review["request"]["uid"]
    assert isinstance(r["allowed"], bool)
    if "patch" in r:
        ops = json.loads(base64.b64decode(r["patch"]))
        import jsonpatch
        jsonpatch.apply_patch(review["request"]["object"], ops)
    for w in r.get("warnings", []):
        assert len(w.encode()) <= 256


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "fuzz", "structural"))
    a = ap.parse_args()
    rng = random.Random(a.seed)
    with open(os.path.join(ROOT, "tests", "data", "admission", "cases.yaml")) as f:
        corpus = yaml.safe_load(f)
    cms = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
    yaml.safe_dump_all(corpus["configmaps"], cms)
    cms.close()
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:exitcode=99",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=98")
    stop = time.time() + a.seconds
    n = failures = 0
    os.makedirs(a.out, exist_ok=True)
    print(f"structural: seed {a.seed}")
    while time.time() < stop:
        obj = mutate(rng, copy.deepcopy(rng.choice(corpus["cases"])["object"]))
        review = review_of(obj, rng)
        body = json.dumps(review)
        flags = rng.choice([[], ["--workloads", "patch"], ["--mode", "dry-run"],
                            ["--on-invalid", "warn"], ["--requests", "keep-lower"]])
        p = subprocess.run([CLI, "review", "--configmap", cms.name] + flags, input=body,
                           capture_output=True, text=True, timeout=60, env=env)
        n += 1
        why = None
        if p.returncode != 0 or "Sanitizer" in p.stderr or "runtime error" in p.stderr:
            why = f"exit {p.returncode}: {p.stderr[-3000:]}"
        else:
            try:
                check(p.stdout, review)
            except Exception as e:  # noqa: BLE001
                why = f"bad answer: {type(e).__name__}: {e}"
        if why:
            failures += 1
            path = os.path.join(a.out, f"failure-{a.seed}-{n}.json")
            with open(path, "w") as f:
                f.write(body)
            print(f"structural: {path}: {flags} {why[:1500]}")
            if failures >= 5:
                break
    os.unlink(cms.name)
    print(f"structural: {n - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
