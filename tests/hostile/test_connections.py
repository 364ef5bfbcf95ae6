"""Connection floods that must not lock anyone out: the webhook with its default connection cap
(256, as the chart runs it), a fresh one per case.

- 256 idle keep-alive TLS connections (a review answered on each, then silence), or 2,000 TCP
  connections that never say a word: good reviews on new connections are still answered, because
  a full listener closes its oldest idle connection, from the busiest client address, to make
  room (before, the listener paused and 0 of 3 reviews were answered within 5 s).
- 600 silent connections to the health port of a webhook allowed 128 open files: /healthz still
  answers, and accept(2) failing for want of descriptors makes the listeners rest instead of
  spinning (before: 80% of a core and 2.7 million log lines in 7 s).
"""
import json
import os
import resource
import socket
import threading
import time

import pytest

from harness import (Response, check_review_answer, client_ctx, exchange, health, jm_pod, post_raw,
                     review, tls_connect)

MAX_CONNECTIONS = 256  # the daemon's default (pkg/server/server.c), which the chart keeps



@pytest.fixture(autouse=True)
def enough_files():
    """This process opens a few thousand sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 8192)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def good_reviews_answered(wh, n=3, within=5.0):
    """How many of n good reviews, each on a new connection, get their patch within `within` s."""
    ok = 0
    for _ in range(n):
        r = review(jm_pod(configmap="good"))
        t0 = time.monotonic()
        try:
            rs, _ = exchange(wh.port, post_raw(json.dumps(r)), timeout=within)
        except OSError:
            continue
        if rs and time.monotonic() - t0 < within:
            resp = check_review_answer(rs[0], r["request"]["uid"])
            ok += resp["allowed"] and "patch" in resp
    return ok


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_idle_keepalive_connections_make_room(webhook):
    body = json.dumps(review(jm_pod(configmap="good")))
    conns = []
    try:
        for _ in range(MAX_CONNECTIONS):
            s = tls_connect(webhook.port, timeout=10)
            s.sendall(post_raw(body))
            data = b""
            while b"\r\n\r\n" not in data or len(data) < 200:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            assert data.startswith(b"HTTP/1.1 200"), data[:100]
            conns.append(s)  # kept open, idle between requests
        assert good_reviews_answered(webhook) == 3
        assert health(webhook.health_port) == 200
    finally:
        for s in conns:
            s.close()


def read_response(s):
    """One HTTP/1.1 response with a Content-Length body from a blocking socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")))
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            return None
        body += chunk
    return head.split(b" ", 2)[1], body


def test_the_api_servers_connection_survives_a_flood_from_elsewhere(webhook):
    """The API server's keep-alive connection, the oldest of all, from 127.0.0.1; then 300 idle
    keep-alive connections from 127.0.0.2, past the cap. Room is made from the address holding
    the most idle connections, so the flood reclaims its own and the API server's connection
    goes on answering reviews."""
    body = json.dumps(review(jm_pod(configmap="good")))
    api = tls_connect(webhook.port, timeout=10)
    api.sendall(post_raw(body))
    assert read_response(api)[0] == b"200"
    flood = []
    try:
        for _ in range(300):
            raw = socket.create_connection(("127.0.0.1", webhook.port), timeout=10,
                                           source_address=("127.0.0.2", 0))
            s = client_ctx().wrap_socket(raw, server_hostname="localhost")
            s.sendall(post_raw(body))
            got = read_response(s)
            if got:
                flood.append(s)
            else:
                s.close()
        for _ in range(3):
            api.sendall(post_raw(body))
            got = read_response(api)
            assert got and got[0] == b"200", "the API server's connection was closed"
            r = check_review_answer(Response(200, {}, got[1]))
            assert r["allowed"] and "patch" in r, r
    finally:
        api.close()
        for s in flood:
            s.close()


def test_silent_tcp_connections_make_room(webhook):
    conns = []
    try:
        for _ in range(2000):
            conns.append(socket.create_connection(("127.0.0.1", webhook.port), timeout=10))
        time.sleep(0.5)
        assert good_reviews_answered(webhook) == 3
        assert health(webhook.health_port) == 200
    finally:
        for s in conns:
            s.close()


def test_health_port_flood_with_few_descriptors(webhook):
    resource.prlimit(webhook.proc.pid, resource.RLIMIT_NOFILE, (128, 128))
    log_before = len(webhook.stderr().splitlines())
    cpu_before = cpu_seconds(webhook.proc.pid)
    conns = []
    try:
        for _ in range(600):
            conns.append(socket.create_connection(("127.0.0.1", webhook.health_port), timeout=10))
        time.sleep(3)
        # Probes still answer, within a second, and a review too.
        t0 = time.monotonic()
        assert health(webhook.health_port, timeout=2) == 200
        assert time.monotonic() - t0 < 1.0
        assert good_reviews_answered(webhook, n=1) == 1
    finally:
        for s in conns:
            s.close()
    cpu = cpu_seconds(webhook.proc.pid) - cpu_before
    lines = len(webhook.stderr().splitlines()) - log_before
    print(f"health flood: {cpu:.2f} s of CPU, {lines} log lines")
    assert cpu < 1.0, f"{cpu:.2f} s of CPU in about 4 s: the accept loop spins"
    assert lines < 100, webhook.stderr()[-2000:]



def test_unfinished_large_bodies_share_one_budget(webhook):
    """60 connections each declare a 7 MiB body and send all of it but its last bytes (before:
    428 MB of buffers). Large bodies share one budget (max_bodies, 24 MiB): the ones past it are
    answered 503 at once. Peak RSS stays under one request's bound; probes and good reviews go on."""
    import threading
    from test_budget import one_case_limit_kib
    size = (7 << 20) - 1
    head = (b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % size)
    chunk = b" " * (1 << 20)
    stop = threading.Event()
    statuses = []

    def hold():
        try:
            s = tls_connect(webhook.port, timeout=20)
        except OSError:
            return
        try:
            s.sendall(head)
            for _ in range(6):
                s.sendall(chunk)
            s.settimeout(0.2)
            while not stop.is_set():
                try:
                    data = s.recv(4096)
                except (socket.timeout, TimeoutError):
                    continue
                if data:
                    statuses.append(data.split(b" ", 2)[1])
                break
        except OSError:
            pass  # the server answered 503 and closed while we still sent
        finally:
            s.close()

    threads = [threading.Thread(target=hold) for _ in range(60)]
    for t in threads:
        t.start()
    time.sleep(6)
    try:
        assert health(webhook.health_port, timeout=2) == 200
        assert good_reviews_answered(webhook) == 3
        if not os.environ.get("FMW_ASAN_BIN"):
            assert webhook.peak_kib() < one_case_limit_kib(), f"peak RSS {webhook.peak_kib()} KiB"
        print(f"60 unfinished 7 MiB bodies: peak RSS {webhook.peak_kib()} KiB, "
              f"{statuses.count(b'503')} answered 503")
        assert statuses.count(b"503") >= 50, statuses
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)


def _health_hogs(port, source, stop):
    """40 clients from `source` that each take a health slot with half a request line and
    reconnect whenever they are closed: more than the listener's 32 slots."""
    import threading

    def hog():
        while not stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2,
                                              source_address=(source, 0)) as s:
                    s.sendall(b"GET /healthz HTTP/1.1\r\nX-a: ")
                    while not stop.is_set() and s.recv(1):
                        pass
            except OSError:
                pass

    hogs = [threading.Thread(target=hog) for _ in range(40)]
    for t in hogs:
        t.start()
    return hogs


def _probe_20(port):
    outcomes = []
    for _ in range(20):
        try:
            outcomes.append(health(port, timeout=2))
        except OSError as e:
            outcomes.append(type(e).__name__)
        time.sleep(0.05)
    return outcomes


@pytest.mark.parametrize("hog_source", ["127.0.0.2", "127.0.0.1"], ids=["other-address", "same-address"])
def test_slow_health_clients_cannot_hold_the_probes_slots(webhook, hog_source):
    """Every health slot (32) taken by clients that send half a request line and reconnect
    whenever they are closed: the kubelet's probes are still answered, since the health listener
    reclaims any connection it is not answering (before: the new ones were refused, 0 of 20).
    From another address (the kubelet probes from the node's, a flood comes from elsewhere) a
    new connection reclaims its own address's first, so every probe is answered. From the
    probes' own address the probe is one of the flood: one accept batch of the reconnecting
    clients can reclaim it before it is read (seen: up to 3 of 20 under load), so the test asks
    for most, not all."""
    stop = threading.Event()
    hogs = _health_hogs(webhook.health_port, hog_source, stop)
    try:
        time.sleep(1)
        outcomes = _probe_20(webhook.health_port)
        if hog_source == "127.0.0.1":
            assert outcomes.count(200) >= 10, f"probes: {outcomes}"
        else:
            assert outcomes.count(200) == 20, f"probes: {outcomes}"
    finally:
        stop.set()
        for t in hogs:
            t.join(timeout=10)


def test_declared_lengths_take_no_share_of_the_body_budget(webhook):
    """Heads that declare 7+7+7+3 MiB and send nothing hold no memory, so they take none of the
    large-body budget: a 100 KB review is still answered (before: 503 until they timed out)."""
    held = []
    try:
        for mib in (7, 7, 7, 3):
            s = tls_connect(webhook.port, timeout=10)
            s.sendall(b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n" % ((mib << 20) - 1))
            held.append(s)
        time.sleep(0.3)
        pod = jm_pod(configmap="good", annotations={"pad": "x" * (100 << 10)})
        r = review(pod)
        rs, _ = exchange(webhook.port, post_raw(json.dumps(r)), timeout=10)
        assert rs and rs[0].status == 200, rs
        resp = check_review_answer(rs[0], r["request"]["uid"])
        assert resp["allowed"] and "patch" in resp, resp
    finally:
        for s in held:
            s.close()


def test_accept_backoff_grows_while_descriptors_lack(webhook):
    """With 128 open files and 600 TLS connections that say nothing, accept(2) keeps failing: the
    listeners' rest doubles up to 1 s instead of starting again at 10 ms after each accept the
    closed idle connection allows (before: 255 log lines in 3 s)."""
    resource.prlimit(webhook.proc.pid, resource.RLIMIT_NOFILE, (128, 128))
    before = webhook.stderr().count("it rests")
    conns = []
    try:
        for _ in range(600):
            try:
                conns.append(socket.create_connection(("127.0.0.1", webhook.port), timeout=5))
            except OSError:
                break
        time.sleep(3)
        rests = webhook.stderr().count("it rests") - before
        print(f"600 silent connections, 128 files: {rests} rests logged in 3 s")
        assert rests <= 12, webhook.stderr()[-2000:]
        assert health(webhook.health_port, timeout=2) == 200
    finally:
        for s in conns:
            s.close()
