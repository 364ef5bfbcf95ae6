"""What one request may cost: small pods whose $(VAR) and $VAR references expand to far more
than they are. Kubernetes expands $(VAR) in env values, command and args, and a `sh -c` script
expands $VAR again; each expanded item is capped, so the danger is their sum: a pod of a few
kilobytes asking for hundreds of megabytes.

Each case goes to a fresh webhook (the default flags, as the chart runs it) so that its peak
RSS (VmHWM) is this request's alone. The review must be answered at once with the pod admitted
as written and a warning that says why, the peak must stay below the chart's default memory
limit, and the webhook must go on serving good reviews.
"""
import json
import os
import re
import shutil
import tempfile
import time

import pytest
import yaml

from harness import (ROOT, StubAPI, Webhook, certs, check_review_answer, exchange, jm_pod, post_raw,
                     review)

GOOD_CM = {"flink-conf.yaml": "jobmanager.memory.process.size: 1600m\n"}
UNITS = {"Ki": 1, "Mi": 1 << 10, "Gi": 1 << 20}


def chart_limit_kib():
    with open(os.path.join(ROOT, "charts", "flink-memory-webhook", "values.yaml")) as f:
        limit = yaml.safe_load(f)["resources"]["limits"]["memory"]
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi)", limit)
    assert m, limit
    return int(m.group(1)) * UNITS[m.group(2)]


# A 1 MiB value from 256 bytes of env: A is 1 KiB, B is 32 A's, C is 32 B's.
MIB_ENV = [{"name": "A", "value": "x" * 1024},
           {"name": "B", "value": "$(A)" * 32},
           {"name": "C", "value": "$(B)" * 32}]

CASES = {
    # 300 args of "$(C)": 300 words of 1 MiB each.
    "args": jm_pod(env=MIB_ENV, args=["jobmanager"] + ["$(C)"] * 300),
    # 300 env entries of "$(C)": 300 values of 1 MiB each.
    "env": jm_pod(env=MIB_ENV + [{"name": f"D{i}", "value": "$(C)"} for i in range(300)]),
    # A script that names $C 300 times: the shell's expansion, 300 words of 1 MiB.
    "script": jm_pod(env=MIB_ENV, command=["sh", "-c"],
                     args=["exec /docker-entrypoint.sh jobmanager " + "$C " * 300]),
    # 80,000 references that each compare up to 4,000 entries: work, not memory (15 s of one
    # thread before the budget, with 60 references an entry).
    "lookups": jm_pod(env=[{"name": f"V{i}", "value": "$(NOPE)" * 20} for i in range(4000)]),
}


@pytest.fixture
def webhook():
    d = tempfile.mkdtemp(prefix="fmw-budget-")
    certs(d)
    api = StubAPI()
    api.configmaps[("flink", "good")] = GOOD_CM
    wh = Webhook(d, api.kubeconfig(os.path.join(d, "kubeconfig")))
    wh.start()
    yield wh
    try:
        wh.stop()
    finally:
        api.close()
        shutil.rmtree(d, ignore_errors=True)


def peak_kib(wh):
    with open(f"/proc/{wh.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


@pytest.mark.parametrize("case", sorted(CASES))
def test_expansion_is_bounded(webhook, case):
    pod = CASES[case]
    body = json.dumps(review(pod))
    assert len(body) < 1 << 20, len(body)
    t0 = time.monotonic()
    rs, _ = exchange(webhook.port, post_raw(body), timeout=30)
    elapsed = time.monotonic() - t0
    assert rs, "no answer: " + webhook.stderr()[-2000:]
    r = check_review_answer(rs[0])
    assert r["allowed"] and "patch" not in r, r
    assert any("budget" in w for w in r.get("warnings", [])), r
    if not os.environ.get("FMW_ASAN_BIN"):
        # AddressSanitizer's shadow memory and quarantine make RSS meaningless in its run.
        assert peak_kib(webhook) < chart_limit_kib(), f"{case}: peak RSS {peak_kib(webhook)} KiB"
    print(f"{case}: {len(body)} bytes answered in {elapsed * 1000:.0f} ms, peak RSS {peak_kib(webhook)} KiB")
    # Still serving: a good review gets its patch.
    good = review(jm_pod(configmap="good"))
    rs, _ = exchange(webhook.port, post_raw(json.dumps(good)))
    r = check_review_answer(rs[0], good["request"]["uid"])
    assert r["allowed"] and "patch" in r, r


# Bodies just under the 7 MiB cap made of the smallest JSON values: millions of them, each a node
# of the parse tree (552 MB for "{}" before the value cap).
BODY_CAP = 7 << 20


def bomb(token):
    head = json.dumps(review(jm_pod()))[:-2]  # ...}} without the request's and review's ends
    head = head[:head.rindex("}")] + ', "bomb": ['  # inside the pod object
    n = (BODY_CAP - len(head) - 64) // (len(token) + 1)
    return head + ",".join([token] * n) + "]}}}"


@pytest.mark.parametrize("token", ["{}", "[]", "1"])
def test_value_bombs_are_refused_before_the_tree(webhook, token):
    body = bomb(token)
    assert BODY_CAP - 4096 < len(body) <= BODY_CAP, len(body)
    json.loads(body)  # valid JSON: only its size in values is hostile
    rs, _ = exchange(webhook.port, post_raw(body), timeout=30)
    assert rs, "no answer: " + webhook.stderr()[-2000:]
    assert rs[0].status == 413, rs[0]
    assert "JSON values" in rs[0].json()["error"], rs[0].json()
    if not os.environ.get("FMW_ASAN_BIN"):
        assert peak_kib(webhook) < chart_limit_kib(), f"{token}: peak RSS {peak_kib(webhook)} KiB"
    print(f"{token}: {len(body)} bytes refused, peak RSS {peak_kib(webhook)} KiB")
    good = review(jm_pod(configmap="good"))
    rs, _ = exchange(webhook.port, post_raw(json.dumps(good)))
    r = check_review_answer(rs[0], good["request"]["uid"])
    assert r["allowed"] and "patch" in r, r
