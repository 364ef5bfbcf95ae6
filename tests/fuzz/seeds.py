#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets from the test fixtures.

usage: seeds.py OUT_DIR     (creates OUT_DIR/<target>/<sha1> files)

The fixtures are the repository's own test data: Flink's cases (tests/data/flink-cases.json),
the CLI's files (tests/data/cli/) and the admission corpus (tests/data/admission/cases.yaml).
Hand-written seeds and crash reproducers live in tests/fuzz/corpus/<target>/ instead.
"""
import base64
import glob
import hashlib
import json
import os
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "tests", "data")


def write(out, target, blob):
    if isinstance(blob, str):
        blob = blob.encode()
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(blob).hexdigest()), "wb") as f:
        f.write(blob)


def flink_cases():
    with open(os.path.join(DATA, "flink-cases.json")) as f:
        return json.load(f)


def admission_corpus():
    with open(os.path.join(DATA, "admission", "cases.yaml")) as f:
        return yaml.safe_load(f)


GROUPS = {"Pod": "", "Deployment": "apps", "StatefulSet": "apps", "ReplicaSet": "apps",
          "Job": "batch", "CronJob": "batch"}


def review_of(obj, operation="CREATE", ns="flink"):
    kind = obj["kind"]
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
                        "kind": {"group": GROUPS.get(kind, ""), "version": "v1", "kind": kind},
                        "namespace": ns, "operation": operation, "object": obj,
                        "oldObject": None, "dryRun": False}}


def pod_of(obj):
    kind = obj["kind"]
    if kind == "Pod":
        return obj
    if kind == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]
    return obj["spec"]["template"]


def conf_texts(corpus):
    """(name, text) of every configuration file in the fixtures."""
    for cm in corpus["configmaps"]:
        for key, text in (cm.get("data") or {}).items():
            yield key, text
    for path in glob.glob(os.path.join(DATA, "cli", "**", "*.yaml"), recursive=True):
        with open(path) as f:
            yield os.path.basename(path), f.read()


def main(out):
    cases = flink_cases()
    corpus = admission_corpus()

    # memsize: every configured value of Flink's cases, and the quantities of the pods.
    for case in cases:
        for value in (case.get("config") or {}).values():
            write(out, "memsize", str(value))
    for q in ["1600Mi", "2Gi", "1.5Gi", "129e6", "0.5", "100m", "1E3", "+12Ki", "2048M", "0.1",
              "1e-3", "-1", "1e309", "99999999999999999999Ei", "NaN", "0x1p-3f", "1.0E-5",
              "-Xmx1g", "flink:1.17.2-scala_2.12-java11", "2.0-preview1", "2147483647"]:
        write(out, "memsize", q)

    # The two configuration formats: Flink's cases rendered in both, plus every fixture file.
    for case in cases:
        conf = case.get("config") or {}
        write(out, "conf_legacy", "".join(f"{k}: {v}\n" for k, v in conf.items()))
        write(out, "conf_yaml", yaml.safe_dump(conf, default_flow_style=False))
    for name, text in conf_texts(corpus):
        write(out, "conf_yaml" if name == "config.yaml" or "standard" in name else "conf_legacy",
              text)

    # Command lines and reviews from the admission corpus.
    by_name = {cm["metadata"]["name"]: cm for cm in corpus["configmaps"]}
    for case in corpus["cases"]:
        obj = case["object"]
        pod = pod_of(obj)
        for c in pod["spec"].get("containers", []):
            elems = [s.encode() for s in c.get("command", [])] + [b"--"] + \
                    [s.encode() for s in c.get("args", [])]
            write(out, "cmdline", b"\0".join(elems))
        review = json.dumps(review_of(obj))
        text = json.dumps(obj)
        used = [n for n in by_name if f'"{n}"' in text]
        cm_text = ""
        if used:
            data = by_name[used[0]].get("data") or {}
            cm_text = data.get("flink-conf.yaml") or data.get("config.yaml") or ""
        write(out, "admission", review + ("\n#fmw-configmap\n" + cm_text if used else ""))
        write(out, "json", review)
        # The same review over HTTP, through TLS (first byte odd).
        body = review.encode()
        write(out, "http", b"\x01POST /mutate?timeout=10s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
              b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() +
              b"\r\n\r\n" + body)

    # Manifests and kubeconfigs.
    write(out, "kubeconfig", yaml.safe_dump_all(corpus["configmaps"]))
    write(out, "kubeconfig", yaml.safe_dump({"apiVersion": "v1", "kind": "List",
                                             "items": corpus["configmaps"][:3]}))
    ca = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    write(out, "kubeconfig", yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "local",
        "clusters": [{"name": "local", "cluster": {"server": "https://127.0.0.1:26443/",
                                                   "certificate-authority-data": ca.decode()}}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": "admin"}}],
        "users": [{"name": "admin", "user": {"client-certificate-data": ca.decode(),
                                             "client-key-data": ca.decode(), "token": "abc\n"}}]}))
    write(out, "kubeconfig", "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n"
          "- name: k\n  cluster: {server: 'https://[::1]:6443', insecure-skip-tls-verify: true}\n"
          "contexts:\n- name: c\n  context: {cluster: k, user: u}\nusers:\n"
          "- name: u\n  user: {tokenFile: token, certificate-authority: ca.crt}\n")
    write(out, "kubeconfig", "a: &x [1, 2, *x]\nb: !!binary aGVsbG8=\nc: [yes, no, ~, 0x1f, 1e3]\n")

    for text in ['{"a":1,"a":2}', '[1e309]', '"\\u0000"', '"\\ud800"', '[-0, 0.0, 1E+2, -1e-7]',
                 '{"k": [true, false, null, {}, []]}', ' \t\n{"x":"\\u00e9\\ud83d\\ude00"} ',
                 '123456789012345678901234567890', '[' * 2049 + ']' * 2049, '"\xff"']:
        write(out, "json", text)

    for req in [b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
                b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
                b"POST /healthz HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc",
                b"GET /../x?y HTTP/1.1\r\n\r\n"]:
        write(out, "http", b"\x00" + req)
    for req in [b"POST /echo HTTP/1.1\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n3\r\n{}\n\r\n0\r\n\r\n",
                b"POST /mutate?timeout=1m30s&x=1 HTTP/1.1\r\nContent-Type: application/json; "
                b"charset=utf-8\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
                b"POST /mutate?timeout=500ms HTTP/1.1\r\nContent-Type: text/plain\r\n"
                b"Content-Length: 2\r\n\r\n{}",
                b"PUT /mutate HTTP/1.1\r\n\r\n"]:
        write(out, "http", b"\x01" + req)


if __name__ == "__main__":
    main(sys.argv[1])
