"""Hostile input against the running webhook: the real flink-memory-webhook on 127.0.0.1, its
ConfigMap reads served by a loopback stub API (harness.StubAPI).

Every case of CATALOGUE gets the right answer — a 4xx, a refused handshake, a closed connection
where nothing HTTP was said, or a valid AdmissionReview — and afterwards the server must still
answer a good review with the right patch on a new connection (checked after each case), keep
its connection count and memory bounded, and exit cleanly with no sanitizer report at the end.
"""
import json
import os
import shutil
import socket
import ssl
import tempfile
import threading
import time

import pytest

from harness import (StubAPI, Webhook, certs, check_review_answer, exchange, health, jm_pod,
                     post_raw, props_pod, review, tls_connect)

GOOD_CM = {"flink-conf.yaml": "jobmanager.memory.process.size: 1600m\n"}


@pytest.fixture(scope="module")
def env():
    d = tempfile.mkdtemp(prefix="fmw-hostile-")
    certs(d)
    api = StubAPI()
    api.configmaps[("flink", "good")] = GOOD_CM
    api.configmaps[("flink", "many-keys")] = {
        "flink-conf.yaml": "".join(f"key.number.{i}: {i}\n" for i in range(19990)) +
        "jobmanager.memory.process.size: 2g\n"}
    api.configmaps[("flink", "yaml-bomb")] = {"config.yaml": (
        "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
        "g: [*f, *f, *f, *f, *f, *f, *f, *f, *f]\njobmanager.memory.process.size: 2g\n")}
    # Regressions: both made a worker spend seconds of CPU (quadratic key handling).
    api.configmaps[("flink", "empty-maps")] = {"config.yaml": "".join(
        f"k{i}: {{}}\n" for i in range(40000)) + "jobmanager.memory.process.size: 2g\n"}
    api.configmaps[("flink", "flat-keys")] = {"config.yaml": "".join(
        f"key.number.{i}: {i}\n" for i in range(19990)) + "jobmanager.memory.process.size: 2g\n"}
    api.configmaps[("flink", "überconf-ü")] = GOOD_CM
    api.configmaps[("flink", "huge")] = {"flink-conf.yaml": "x: " + "y" * (3 << 20) + "\n"}
    api.configmaps[("flink", "binaryish")] = {"flink-conf.yaml": "\ufffd\u0001\u007f: \u200b\n"
                                              "jobmanager.memory.process.size: 1g\n"}
    wh = Webhook(d, api.kubeconfig(os.path.join(d, "kubeconfig")), "--workers", "2",
                 "--max-connections", "64", "--lookup-timeout-ms", "1000")
    wh.start()
    wh.stub = api
    yield wh
    try:
        wh.stop()
    finally:
        api.close()
        shutil.rmtree(d, ignore_errors=True)


def good_request():
    r = review(jm_pod(configmap="good"))
    return r["request"]["uid"], post_raw(json.dumps(r))


def assert_serving(wh):
    """A good review on a new connection gets the 1600Mi patch; the probes answer."""
    assert wh.proc.poll() is None, "the webhook died: " + wh.stderr()[-3000:]
    uid, raw = good_request()
    rs, _ = exchange(wh.port, raw)
    assert rs, "no answer to a good review after the case"
    r = check_review_answer(rs[0], uid)
    assert r["allowed"] and "patch" in r, r
    assert health(wh.health_port) == 200


# ---- expectations ----

def is_4xx(rs, closed, codes=None):
    if codes is not None:
        return bool(rs) and rs[0].status in codes
    return bool(rs) and 400 <= rs[0].status < 500


def expect_4xx(*codes):
    def check(rs, closed):
        assert is_4xx(rs, closed, codes or None), (rs, closed)
    return check


def expect_4xx_or_close(rs, closed):
    """Nothing that is HTTP was said: a 400 or simply a closed connection are both right."""
    assert is_4xx(rs, closed) or (not rs and closed), (rs, closed)


def expect_unsupported(rs, closed):
    """A method or version we do not speak: 4xx, 501 or 505 (RFC 9110 15.6.2, 15.6.6), or a
    closed connection."""
    assert is_4xx(rs, closed) or (rs and rs[0].status in (501, 505)) or (not rs and closed), \
        (rs, closed)


def expect_review(allowed=None, patch=None, warn=None, denied_msg=None):
    def check(rs, closed):
        assert rs, ("no answer", closed)
        r = check_review_answer(rs[0])
        if allowed is not None:
            assert r["allowed"] is allowed, r
        if patch is not None:
            assert ("patch" in r) is patch, r
        if warn is not None:
            assert any(warn in w for w in r.get("warnings", [])), r
        if denied_msg is not None:
            assert denied_msg in r["status"]["message"], r
    return check


def expect_review_or_4xx(rs, closed):
    assert rs, ("no answer", closed)
    if 400 <= rs[0].status < 500:
        return
    check_review_answer(rs[0])


# ---- payload builders ----

def body_review(obj, **kw):
    return post_raw(json.dumps(review(obj, **kw)))


def raw_json(text):
    return post_raw(text)


def mutate_doc(doc):
    return post_raw(json.dumps(doc))


def review_without(*path):
    doc = review(jm_pod(configmap="good"))
    cur = doc
    for p in path[:-1]:
        cur = cur[p]
    del cur[path[-1]]
    return mutate_doc(doc)


def review_with(value, *path):
    doc = review(jm_pod(configmap="good"))
    cur = doc
    for p in path[:-1]:
        cur = cur[p]
    cur[path[-1]] = value
    return mutate_doc(doc)


GOOD_BODY = json.dumps(review(jm_pod(configmap="good"))).encode()


def chunked(body, sizes=(7, 100, 1000)):
    out, i, k = b"", 0, 0
    while i < len(body):
        n = sizes[k % len(sizes)]
        out += b"%x\r\n" % len(body[i:i + n]) + body[i:i + n] + b"\r\n"
        i += n
        k += 1
    return out + b"0\r\n\r\n"


HEAD = b"POST /mutate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"


def enormous_pod(n):
    pod = jm_pod(configmap="good")
    pod["spec"]["containers"] += [{"name": f"sidecar-{i}", "image": "busybox",
                                   "args": ["sleep", "1"]} for i in range(n)]
    return pod


def nested(depth, leaf="1"):
    return "[" * depth + leaf + "]" * depth


# name, raw request (bytes or callable), check(rs, closed), options for exchange
def carrying(annotation, volume_configmap):
    """A JobManager pod annotated with a ConfigMap that a volume beside its conf dir carries (an
    init container or a script could copy it in), so the annotation is followed."""
    pod = jm_pod(annotations={"flink-memory-webhook/configmap": annotation})
    pod["spec"]["containers"][0]["volumeMounts"] = [{"name": "src", "mountPath": "/config-src"}]
    pod["spec"]["volumes"] = [{"name": "src", "configMap": {"name": volume_configmap}}]
    return pod


CATALOGUE = [
    # -- malformed HTTP --
    ("bad request line", b"GARBAGE\r\n\r\n", expect_4xx_or_close, {}),
    ("request line without version", b"GET /healthz\r\n\r\n", expect_4xx_or_close, {}),
    ("HTTP/2.0 in a request line", b"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n",
     expect_unsupported, {}),
    ("HTTP/9.9 in a request line", b"POST /mutate HTTP/9.9\r\nHost: x\r\n\r\n",
     expect_unsupported, {}),
    ("unknown method", b"BREW /mutate HTTP/1.1\r\nHost: x\r\n\r\n", expect_unsupported, {}),
    ("GET on /mutate", b"GET /mutate HTTP/1.1\r\nHost: x\r\n\r\n", expect_4xx(405), {}),
    ("DELETE on /mutate", b"DELETE /mutate HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
     expect_4xx(405), {}),
    ("POST on /healthz", b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
     expect_4xx(405), {}),
    ("unknown path", post_raw(GOOD_BODY, path="/mutate/"), expect_4xx(404), {}),
    ("path traversal", post_raw(GOOD_BODY, path="/../../etc/passwd"), expect_4xx(404), {}),
    ("64 KiB URI", b"GET /" + b"a" * 65536 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
     expect_4xx_or_close, {}),
    ("one 100 KiB header", HEAD + b"X-Big: " + b"b" * 102400 + b"\r\nContent-Length: 2\r\n\r\n{}",
     expect_4xx_or_close, {}),
    ("10000 headers", HEAD + b"".join(b"X-%d: v\r\n" % i for i in range(10000)) +
     b"Content-Length: 2\r\n\r\n{}", expect_4xx_or_close, {}),
    ("duplicate Content-Length, same value", HEAD + b"Content-Length: %d\r\nContent-Length: %d"
     b"\r\n\r\n" % (len(GOOD_BODY), len(GOOD_BODY)) + GOOD_BODY, expect_4xx(400), {}),
    ("duplicate Content-Length, different values", HEAD + b"Content-Length: 2\r\n"
     b"Content-Length: %d\r\n\r\n" % len(GOOD_BODY) + GOOD_BODY, expect_4xx(400), {}),
    ("Content-Length list", HEAD + b"Content-Length: 2, 2\r\n\r\n{}", expect_4xx_or_close, {}),
    ("negative Content-Length", HEAD + b"Content-Length: -5\r\n\r\n{}", expect_4xx_or_close, {}),
    ("non-numeric Content-Length", HEAD + b"Content-Length: 1e3\r\n\r\n{}",
     expect_4xx_or_close, {}),
    ("Content-Length over 2^64", HEAD + b"Content-Length: 99999999999999999999999\r\n\r\n{}",
     expect_4xx_or_close, {}),
    ("Content-Length past the 7 MiB cap", HEAD + b"Content-Length: 8388608\r\n\r\n{}",
     expect_4xx(413), {}),
    ("body shorter than Content-Length", HEAD + b"Content-Length: 1000\r\n\r\n{}",
     expect_4xx_or_close, {"half_close": True}),
    ("chunked body", HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + chunked(GOOD_BODY),
     expect_review(allowed=True, patch=True), {}),
    ("chunked body with extensions", HEAD + b"Transfer-Encoding: chunked\r\n\r\n" +
     chunked(GOOD_BODY).replace(b"\r\n", b";ext=1\r\n", 1), expect_review_or_4xx, {}),
    ("chunked body, bad chunk size", HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n"
     b"0\r\n\r\n", expect_4xx_or_close, {}),
    ("chunked body past the cap", HEAD + b"Transfer-Encoding: chunked\r\n\r\n" +
     (b"100000\r\n" + b" " * 0x100000 + b"\r\n") * 8 + b"0\r\n\r\n", expect_4xx(413), {}),
    ("Transfer-Encoding gzip, chunked", HEAD + b"Transfer-Encoding: gzip, chunked\r\n\r\n" +
     chunked(GOOD_BODY), expect_4xx(400), {}),
    ("Transfer-Encoding and Content-Length", HEAD + b"Transfer-Encoding: chunked\r\n"
     b"Content-Length: 5\r\n\r\n" + chunked(GOOD_BODY), expect_review_or_4xx, {}),
    ("two Transfer-Encoding headers", HEAD + b"Transfer-Encoding: chunked\r\n"
     b"Transfer-Encoding: identity\r\n\r\n" + chunked(GOOD_BODY), expect_4xx(400), {}),
    ("pipelined: two good reviews", post_raw(GOOD_BODY) * 2,
     lambda rs, c: [check_review_answer(r) for r in rs] and len(rs) == 2 or
     pytest.fail(f"pipelined answers: {rs}"), {"want": 2}),
    ("pipelined: good review then garbage", post_raw(GOOD_BODY) + b"\x00\x01garbage\r\n\r\n",
     lambda rs, c: check_review_answer(rs[0]) and (len(rs) == 1 or rs[1].status == 400),
     {"want": 2}),
    # A TLS close_notify right after a complete request ends only the client's side: the
    # request is still answered, then the connection closes.
    ("good review then close_notify", post_raw(GOOD_BODY),
     lambda rs, c: check_review_answer(rs[0]) and c, {"half_close": True}),
    ("non-UTF-8 path", post_raw(GOOD_BODY, path="/mu\xfftate".encode("latin-1").decode(
        "latin-1")), expect_4xx(404), {}),
    ("non-UTF-8 header value", HEAD + b"X-Name: \xff\xfe\xc3\x28\r\nContent-Length: %d\r\n\r\n"
     % len(GOOD_BODY) + GOOD_BODY, expect_review_or_4xx, {}),
    ("non-UTF-8 body", post_raw(b'{"apiVersion": "\xff\xfe"}'), expect_4xx(400), {}),
    ("NUL in a header", HEAD + b"X-Nul: a\x00b\r\nContent-Length: 2\r\n\r\n{}",
     expect_4xx_or_close, {}),
    ("header line without a colon", HEAD + b"NoColonHere\r\nContent-Length: 2\r\n\r\n{}",
     expect_4xx_or_close, {}),
    ("obs-fold continuation line", HEAD + b"X-A: a\r\n  folded\r\nContent-Length: %d\r\n\r\n"
     % len(GOOD_BODY) + GOOD_BODY, expect_review_or_4xx, {}),
    ("bare LF line endings", b"POST /mutate HTTP/1.1\nHost: x\nContent-Type: application/json"
     b"\nContent-Length: %d\n\n" % len(GOOD_BODY) + GOOD_BODY, expect_review_or_4xx, {}),
    ("absolute-form URI", post_raw(GOOD_BODY, path="https://127.0.0.1/mutate"),
     expect_review_or_4xx, {}),
    ("wrong Content-Type", post_raw(GOOD_BODY, ctype="text/plain"), expect_4xx(415), {}),
    ("Content-Type prefix trick", post_raw(GOOD_BODY, ctype="application/jsonx"),
     expect_4xx(415), {}),
    ("Expect: 100-continue", post_raw(GOOD_BODY, extra=b"Expect: 100-continue\r\n"),
     lambda rs, c: check_review_answer([r for r in rs if r.status != 100][0]), {}),
    # RFC 9112 2.3: a higher 1.x minor version is read as 1.1 (it had been refused with 505).
    ("HTTP/1.2 request line", post_raw(GOOD_BODY).replace(b" HTTP/1.1\r\n", b" HTTP/1.2\r\n", 1),
     expect_review(patch=True), {}),
    # RFC 9112 6.1: a chunked HTTP/1.0 request is answered and the connection closed, even
    # with keep-alive (it had been kept open).
    ("HTTP/1.0 chunked keep-alive", b"POST /mutate HTTP/1.0\r\nContent-Type: application/json"
     b"\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n" % len(GOOD_BODY)
     + GOOD_BODY + b"\r\n0\r\n\r\n",
     lambda rs, closed: (check_review_answer(rs[0]), closed or pytest.fail("connection kept open")),
     {"want": 2, "max_seconds": 5}),
    ("HTTP/1.0 without Host", b"POST /mutate HTTP/1.0\r\nContent-Type: application/json\r\n"
     b"Content-Length: %d\r\n\r\n" % len(GOOD_BODY) + GOOD_BODY, expect_review(patch=True), {}),
    ("unreadable ?timeout=", post_raw(GOOD_BODY, path="/mutate?timeout=-1e99h&timeout=%00"),
     expect_review(patch=True), {}),
    ("?timeout=0s", post_raw(GOOD_BODY, path="/mutate?timeout=0s"), expect_review(), {}),
    # -- JSON bombs --
    ("empty body", post_raw(b""), expect_4xx(400), {}),
    ("body null", post_raw(b"null"), expect_4xx(400), {}),
    ("top-level array", post_raw(b"[1,2,3]"), expect_4xx(400), {}),
    ("100000 nested arrays", post_raw(nested(100000)), expect_4xx(400), {}),
    ("deep nesting inside the pod", raw_json(json.dumps(review(jm_pod(configmap="good")))
     .replace('"labels": {', '"labels": {"deep": ' + nested(1500) + ', ', 1)),
     expect_review(patch=True), {}),
    ("6 MiB string in an annotation", body_review(jm_pod(
        configmap="good", annotations={"big": "x" * (6 << 20)})), expect_review(patch=True), {}),
    ("number with 100000 digits", raw_json('{"apiVersion": "admission.k8s.io/v1", "n": ' +
                                           "9" * 100000 + "}"), expect_4xx(400), {}),
    ("1e309 as a number", raw_json(json.dumps(review(jm_pod(configmap="good")))[:-1] +
                                   ', "x": 1e309}'), expect_4xx(400), {}),
    # This, "50000 env vars" and "100000 args" hold more than FMW_JSON_MAX_VALUES values: refused
    # (413) before their tree is built, and the API server applies failurePolicy.
    ("100000 labels", body_review(dict(jm_pod(configmap="good"), metadata={
        "generateName": "jm-", "labels": {f"l{i}": "v" for i in range(100000)}})),
     expect_4xx(413), {}),
    ("duplicate JSON keys", raw_json('{"apiVersion": "admission.k8s.io/v1", "apiVersion": "x"}'),
     expect_4xx(400), {}),
    ("escaped NUL in a string", raw_json(json.dumps(review(jm_pod(configmap="good")))
     .replace('"flink-jobmanager-"', '"flink\\u0000-jm"')), expect_review_or_4xx, {}),
    ("lone surrogate escape", raw_json(json.dumps(review(jm_pod(configmap="good")))
     .replace('"flink-jobmanager-"', '"\\ud800"')), expect_4xx(400), {}),
    # -- AdmissionReviews with missing or wrongly typed fields, wrong kinds --
    ("no request", review_without("request"), expect_4xx(400), {}),
    ("no uid", review_without("request", "uid"), expect_4xx(400), {}),
    ("uid is a number", review_with(42, "request", "uid"), expect_4xx(400), {}),
    ("empty uid", review_with("", "request", "uid"), expect_4xx(400), {}),
    ("apiVersion v2", review_with("admission.k8s.io/v2", "apiVersion"), expect_4xx(400), {}),
    ("kind is not AdmissionReview", review_with("Pod", "kind"), expect_4xx(400), {}),
    ("request is a string", review_with("pod", "request"), expect_4xx(400), {}),
    ("request.kind is a string", review_with("Pod", "request", "kind"),
     expect_review(allowed=True, patch=False), {}),
    ("operation is a number", review_with(1, "request", "operation"),
     expect_review(allowed=True, patch=False), {}),
    ("object is an array", review_with([1, 2], "request", "object"),
     expect_review(allowed=True, patch=False), {}),
    ("object missing", review_without("request", "object"),
     expect_review(allowed=True, patch=False), {}),
    ("containers is a string", review_with("jobmanager", "request", "object", "spec",
                                           "containers"), expect_review(allowed=True), {}),
    ("container is a number", review_with([7, None, "x"], "request", "object", "spec",
                                           "containers"), expect_review(allowed=True), {}),
    ("env is an object", body_review(jm_pod(env={"FLINK_PROPERTIES": "x"})),
     expect_review(allowed=True), {}),
    ("args hold numbers and nulls", body_review(jm_pod(args=[1, None, {"a": 1}, "jobmanager"])),
     expect_review(allowed=True), {}),
    ("resources.limits.memory is a number", body_review(jm_pod(configmap="good", memory=2048)),
     expect_review(allowed=True), {}),
    ("namespace is a number", review_with(5, "request", "namespace"),
     expect_review(allowed=True), {}),
    ("a ConfigMap under review", body_review({"apiVersion": "v1", "kind": "ConfigMap",
                                              "metadata": {"name": "x"}, "data": {}},
                                             kind="ConfigMap"),
     expect_review(allowed=True, patch=False), {}),
    ("a Pod DELETE", body_review(jm_pod(configmap="good"), operation="DELETE"),
     expect_review(allowed=True, patch=False), {}),
    ("a Deployment with a string template", body_review(
        {"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": "x"}},
        kind="Deployment", group="apps"), expect_review(allowed=True, patch=False), {}),
    ("a CronJob with a null jobTemplate", body_review(
        {"apiVersion": "batch/v1", "kind": "CronJob", "spec": {"jobTemplate": None}},
        kind="CronJob", group="batch"), expect_review(allowed=True, patch=False), {}),
    # -- enormous pods --
    ("3000 containers", body_review(enormous_pod(3000)), expect_review(allowed=True), {}),
    # Past FMW_JSON_MAX_VALUES (six values a container): refused before the tree is built.
    ("5000 containers", body_review(enormous_pod(5000)), expect_4xx(413), {}),
    ("50000 env vars", body_review(jm_pod(configmap="good", env=[
        {"name": f"V{i}", "value": "$(V%d)" % (i - 1)} for i in range(50000)])),
     expect_4xx(413), {}),
    ("100000 args", body_review(jm_pod(configmap="good", args=["jobmanager"] +
                                       ["-Dx=y"] * 100000)), expect_4xx(413), {}),
    ("a 1 MiB sh -c script", body_review(jm_pod(configmap="good", command=["sh", "-c"], args=[
        "exec /docker-entrypoint.sh jobmanager " + "'\"$X\\' " * 150000])),
     expect_review(allowed=True), {}),
    ("ConfigMap with 20000 keys", body_review(jm_pod(configmap="many-keys")),
     expect_review(allowed=True, patch=True), {"max_seconds": 2}),
    ("config.yaml with 40000 empty mappings", body_review(jm_pod(
        configmap="empty-maps", image="flink:2.0.0")), expect_review(allowed=True, patch=True),
     {"max_seconds": 2}),
    ("config.yaml with 20000 keys", body_review(jm_pod(
        configmap="flat-keys", image="flink:2.0.0")), expect_review(allowed=True, patch=True),
     {"max_seconds": 2}),
    ("ConfigMap with a YAML alias bomb", body_review(jm_pod(
        configmap="yaml-bomb", image="flink:2.0.0")), expect_review(), {}),
    ("3 MiB ConfigMap", body_review(jm_pod(configmap="huge")), expect_review(), {}),
    ("ConfigMap of control characters", body_review(jm_pod(configmap="binaryish")),
     expect_review(allowed=True, patch=True), {}),
    # Regression: a -Xmx in a sh -c script after a $(VAR) that lengthens it was patched at
    # positions of the expanded script: heap over-read, wrong bytes replaced.
    ("-Xmx in a script after a longer $(VAR)", body_review(jm_pod(
        configmap="good", env=[{"name": "LONG", "value": "-XX:+UseG1GC " * 20}],
        command=["sh", "-c", "exec java $(LONG) -Xmx4g -cp x "
                 "org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint"],
        args=[])), expect_review(allowed=True, patch=False, warn="JVM flags in a script using $(VAR): cannot rewrite"), {}),
    ("-Xmx in a script after a shorter $(VAR)", body_review(jm_pod(
        configmap="good", env=[{"name": "S", "value": ""}],
        command=["sh", "-c", "exec java $(S)$(S)$(S)$(S) -cp x -Xmx4g "
                 "org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint"],
        args=[])), expect_review(allowed=True, patch=False), {}),
    ("-Xmx in a script without $(VAR)", body_review(jm_pod(
        configmap="good", command=["sh", "-c", "exec java -Xmx4g -cp x "
                                   "org.apache.flink.runtime.entrypoint."
                                   "StandaloneSessionClusterEntrypoint"], args=[])),
     expect_review(allowed=True, patch=True), {}),
    # -- absurd memory values --
    ("process size past Long.MAX_VALUE", body_review(props_pod(
        "jobmanager.memory.process.size: 9223372036854775808b")), expect_review(allowed=False), {}),
    ("process size overflowing with its unit", body_review(props_pod(
        "jobmanager.memory.process.size: 9999999999999999t")), expect_review(allowed=False), {}),
    ("negative process size", body_review(props_pod("jobmanager.memory.process.size: -1g")),
     expect_review(allowed=False), {}),
    ("process size 1e309", body_review(props_pod("jobmanager.memory.process.size: 1e309")),
     expect_review(allowed=False), {}),
    ("process size 0", body_review(props_pod("jobmanager.memory.process.size: 0")),
     expect_review(allowed=False), {}),
    ("heap larger than the process", body_review(props_pod(
        "jobmanager.memory.process.size: 1g\njobmanager.memory.heap.size: 8g")),
     expect_review(allowed=False), {}),
    ("overhead fraction NaN", body_review(props_pod(
        "jobmanager.memory.process.size: 1g\njobmanager.memory.jvm-overhead.fraction: NaN")),
     expect_review(), {}),
    ("overhead fraction -Infinity", body_review(props_pod(
        "jobmanager.memory.process.size: 1g\njobmanager.memory.jvm-overhead.fraction: "
        "-Infinity")), expect_review(allowed=False), {}),
    ("limit 1e309", body_review(jm_pod(configmap="good", memory="1e309")),
     expect_review(allowed=True, patch=True), {}),
    ("limit 99999999999Ei", body_review(jm_pod(configmap="good", memory="99999999999Ei")),
     expect_review(allowed=True, patch=True), {}),
    ("limit -1Gi", body_review(jm_pod(configmap="good", memory="-1Gi")),
     expect_review(allowed=True, patch=True), {}),
    ("-Xmx past 2^64", body_review(jm_pod(configmap="good", env=[
        {"name": "_JAVA_OPTIONS", "value": "-Xmx99999999999999999999999g"}])),
     expect_review(allowed=True), {}),
    ("version annotation 99999999999.1", body_review(jm_pod(
        configmap="good", annotations={"flink-memory-webhook/flink-version": "99999999999.1"})),
     expect_review(allowed=True), {}),
    # -- unicode --
    ("unicode in annotation and label keys", body_review(jm_pod(configmap="good", annotations={
        "ünïcödé/κλειδί": "值", "\U0001F600": "\u202e"})), expect_review(patch=True), {}),
    ("unicode container name", body_review(jm_pod(configmap="good", name="jobmanager-\u4e2d\u6587"
                                                  "\U0001F680" * 40)),
     expect_review(allowed=True), {}),
    ("unicode ConfigMap name", body_review(jm_pod(configmap="überconf-ü")),
     expect_review(allowed=True), {}),
    ("unicode in config keys", body_review(props_pod(
        "jobmanager.memory.process.size\u00a0: 1g\n\u0130jobmanager.memory.process.size: 2g")),
     expect_review(allowed=True), {}),
    # The annotation is followed where the pod carries the ConfigMap it names (here a volume of
    # ".." beside the conf dir): the name is then checked before any API call.
    ("configmap annotation to nowhere", body_review(carrying("../../secrets/x/y/z", "..")),
     expect_review(allowed=True, patch=False), {}),
    ("mode annotation garbage", body_review(jm_pod(
        configmap="good", annotations={"flink-memory-webhook/mode": "\u202e\U0001F600" * 100})),
     expect_review(allowed=True), {}),
]


def test_catalogue_size():
    assert len(CATALOGUE) >= 50


@pytest.mark.parametrize("name,raw,check,opts", CATALOGUE, ids=[c[0] for c in CATALOGUE])
def test_hostile(env, name, raw, check, opts):
    opts = dict(opts)
    max_seconds = opts.pop("max_seconds", 12)
    t0 = time.time()
    rs, closed = exchange(env.port, raw, timeout=15, **opts)
    elapsed = time.time() - t0
    check(rs, closed)
    assert elapsed < max_seconds, f"{name}: took {elapsed:.1f}s"
    assert_serving(env)


# ---- TLS ----

TLS_REFUSED = (ssl.SSLError, ConnectionResetError, ConnectionAbortedError, BrokenPipeError)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_old_tls_refused(env, version):
    with pytest.raises(TLS_REFUSED):
        tls_connect(env.port, minv=version, maxv=version, ciphers="ALL:@SECLEVEL=0").close()
    assert_serving(env)


@pytest.mark.parametrize("ciphers", ["AES128-SHA:AES256-SHA", "ECDHE-RSA-AES128-SHA:"
                                     "ECDHE-ECDSA-AES128-SHA", "DES-CBC3-SHA", "NULL-SHA256:"
                                     "eNULL", "aNULL:ADH-AES128-GCM-SHA256", "AES128-GCM-SHA256",
                                     "DHE-RSA-AES128-GCM-SHA256"])
def test_weak_tls12_ciphers_refused(env, ciphers):
    with pytest.raises(TLS_REFUSED):
        tls_connect(env.port, maxv=ssl.TLSVersion.TLSv1_2,
                    ciphers=ciphers + ":@SECLEVEL=0").close()
    assert_serving(env)


def test_h2_only_alpn_refused(env):
    with pytest.raises(TLS_REFUSED):
        tls_connect(env.port, alpn=("h2",)).close()
    assert_serving(env)


def raw_tcp(port, data, timeout=5):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return out
                out += chunk
        except OSError:  # reset, broken pipe, not connected: the server hung up first
            return b""


@pytest.mark.parametrize("name,data", [
    ("random bytes", os.urandom(4096)),
    ("plain HTTP on the TLS port", b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("SSLv2-style hello", bytes.fromhex("8040010301002700000010000000") + os.urandom(48)),
    ("truncated ClientHello", bytes.fromhex("160301020001000200") + b"\x03\x03" + os.urandom(20)),
    ("TLS record with a 16 MiB length", bytes.fromhex("16030300ffff") + os.urandom(1024)),
    ("handshake record of alerts", bytes.fromhex("15030300020228") * 50),
])
def test_garbage_tls(env, name, data):
    out = raw_tcp(env.port, data)
    assert b"HTTP/1." not in out  # never an HTTP answer before a handshake
    assert_serving(env)


# ---- slow and idle clients ----

def test_slowloris_and_idle_connections(env):
    """Twenty connections trickle a request (a byte every 0.5 s), ten finish a handshake and say
    nothing, ten open TCP and say nothing: the server closes all of them by its request
    deadline (10 s), and meanwhile serves good reviews without waiting for them."""
    stop = threading.Event()
    closed_after = []

    def trickle(i):
        try:
            s = tls_connect(env.port, timeout=30)
        except OSError:
            closed_after.append(0)
            return
        t0 = time.time()
        data = post_raw(GOOD_BODY)
        try:
            for b in data:
                if stop.is_set():
                    break
                s.sendall(bytes([b]))
                time.sleep(0.5)
            closed_after.append(None)  # never cut: wrong
        except (OSError, ssl.SSLError):
            closed_after.append(time.time() - t0)
        finally:
            s.close()

    def idle_tls():
        try:
            s = tls_connect(env.port, timeout=30)
            t0 = time.time()
            s.settimeout(30)
            try:
                got = s.recv(1)
            except (OSError, ssl.SSLError):
                got = b""
            closed_after.append(time.time() - t0 if not got else None)
            s.close()
        except OSError:
            closed_after.append(0)

    def idle_tcp():
        with socket.create_connection(("127.0.0.1", env.port), timeout=30) as s:
            t0 = time.time()
            try:
                got = s.recv(1)
            except OSError:
                got = b""
            closed_after.append(time.time() - t0 if not got else None)

    threads = [threading.Thread(target=trickle, args=(i,)) for i in range(20)]
    threads += [threading.Thread(target=idle_tls) for _ in range(10)]
    threads += [threading.Thread(target=idle_tcp) for _ in range(10)]
    for t in threads:
        t.start()
    latencies = []
    t_end = time.time() + 8
    while time.time() < t_end:
        t0 = time.time()
        assert_serving(env)
        latencies.append(time.time() - t0)
        time.sleep(0.2)
    for t in threads:
        t.join(timeout=40)
    stop.set()
    assert len(closed_after) == 40
    assert None not in closed_after, closed_after
    assert max(closed_after) < 16, closed_after
    # Not a speed check (make bench measures that): a server that waited on the slow
    # connections would answer only once they are cut, at the request deadline (10 s). Half of
    # it leaves room for the TLS handshakes of forty connections under ASan on two cores (2.8 s
    # seen once).
    assert max(latencies) < 5.0, latencies


def test_resources_bounded_after_catalogue(env):
    """After everything above: few descriptors left open, memory far from the request caps."""
    time.sleep(0.5)
    assert env.open_fds() < 64, env.open_fds()
    # AddressSanitizer's quarantine and shadow memory make RSS meaningless in the sanitized run
    # (it measured 460 MB there); the plain run holds the real bound.
    if not os.environ.get("FMW_ASAN_BIN"):
        assert env.rss_kib() < 400 * 1024, env.rss_kib()


@pytest.mark.parametrize("name", [".", "..", "a..b", "-a", "a-", "a.-b", "UPPER", "x?watch=1"])
def test_configmap_names_never_leave_the_configmaps_path(env, name):
    """Regression: "." and ".." passed the name check and libcurl resolved the dot segments, so
    the webhook listed the namespace's ConfigMaps or read the Namespace object. Every name that
    is not a DNS-1123 subdomain is refused before any API call."""
    api = env.stub
    before = len(api.paths)
    for pod in (jm_pod(configmap=name), carrying(name, name)):
        rs, _ = exchange(env.port, post_raw(json.dumps(review(pod))))
        r = check_review_answer(rs[0])
        assert r["allowed"] and "patch" not in r, r
        assert any("not read" in w for w in r["warnings"]), r
    assert api.paths[before:] == [], api.paths[before:]
    assert_serving(env)


def test_made_up_kinds_do_not_crowd_the_metrics(env):
    """Regression: the decisions metric was labelled with the request's kind as sent, so 300
    made-up kinds filled its series cap (256) and real decisions went uncounted."""
    raw = b"".join(post_raw(json.dumps(review({"metadata": {}}, kind=f"Made{i:04d}")))
                   for i in range(300))
    rs, _ = exchange(env.port, raw, timeout=30, want=300)
    assert len(rs) == 300 and all(r.status == 200 for r in rs)
    uid, good = good_request()
    check_review_answer(exchange(env.port, good)[0][0], uid)
    with socket.create_connection(("127.0.0.1", env.health_port), timeout=5) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        page = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            page += chunk
    lines = [l for l in page.decode().splitlines() if l.startswith(
        "flink_memory_webhook_admissions_total{")]
    assert not any("Made0" in l for l in lines), lines[:5]
    assert any('kind="Pod"' in l and 'outcome="patched"' in l for l in lines), lines
