#!/usr/bin/env python3
"""pkg/server suite: real TLS clients (Python's ssl, curl, openssl s_client) against
build/tests/server-testd on loopback.

Each test starts its own daemon (its own process, its own certificates dir), so tests never see
each other's state. Standard library only. Usage:

    test_server.py --testd build/tests/server-testd [--sanitized] [-k SUBSTRING]

With --sanitized the daemon is an ASan/UBSan build: every daemon's stderr is checked for
sanitizer reports (leaks included) when it stops, and timing margins are wider.
"""
import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings

warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.0/1.1 are used on purpose

ARGS = None
SLOW = 1.0  # timing multiplier; larger under sanitizers
MIB = 1024 * 1024


# ---------------------------------------------------------------------------------------------
# certificates

def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, **kw)


class Certs:
    """A CA, two server pairs it signs (a, b), a stray key, and a client CA with a client pair."""

    def __init__(self, root):
        self.root = root
        self.ca_key, self.ca = self._ca("ca", "fmw test CA")
        self.a_key, self.a = self._leaf("a", self.ca, self.ca_key, "server-a")
        self.b_key, self.b = self._leaf("b", self.ca, self.ca_key, "server-b")
        self.stray_key = self._key("stray")
        self.cca_key, self.cca = self._ca("cca", "fmw client CA")
        self.client_key, self.client = self._leaf("client", self.cca, self.cca_key, "apiserver",
                                                  client=True)

    def _p(self, name):
        return os.path.join(self.root, name)

    def _key(self, name):
        path = self._p(name + ".key")
        run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", path])
        return path

    def _ca(self, name, cn):
        key = self._key(name)
        crt = self._p(name + ".pem")
        run(["openssl", "req", "-x509", "-new", "-key", key, "-out", crt, "-days", "2",
             "-subj", "/CN=" + cn, "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        return key, crt

    def _leaf(self, name, ca, ca_key, cn, client=False):
        key = self._key(name)
        csr = self._p(name + ".csr")
        crt = self._p(name + ".pem")
        ext = self._p(name + ".ext")
        with open(ext, "w") as f:
            if client:
                f.write("extendedKeyUsage=clientAuth\n")
            else:
                f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
        run(["openssl", "req", "-new", "-key", key, "-out", csr, "-subj", "/CN=" + cn])
        run(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key,
             "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", ext])
        return key, crt


CERTS = None


def read(path):
    with open(path, "rb") as f:
        return f.read()


def write(path, data):
    """Rewrites a file in place (open, truncate, write): not atomic, like a careless operator."""
    with open(path, "wb") as f:
        f.write(data)


def der_of(pem_path):
    return ssl.PEM_cert_to_DER_cert(read(pem_path).decode())


# ---------------------------------------------------------------------------------------------
# the daemon

SANITIZER_RE = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer)|Sanitizer has encountered|runtime error:|"
                          r"SUMMARY: (Address|Undefined|Leak)")


DAEMONS = []  # every daemon of the running test, killed and cleaned up after it


class Daemon:
    def __init__(self, *extra, cert=None, key=None, start=True):
        DAEMONS.append(self)
        self.dir = tempfile.mkdtemp(prefix="fmw-srv-")
        self.cert = cert or os.path.join(self.dir, "tls.crt")
        self.key = key or os.path.join(self.dir, "tls.key")
        if cert is None:
            shutil.copy(CERTS.a, self.cert)
            shutil.copy(CERTS.a_key, self.key)
        self.port_file = os.path.join(self.dir, "ports")
        self.log_path = os.path.join(self.dir, "stderr.log")
        # No drain delay unless a test asks for one: stopping a daemon is part of every test.
        self.extra = ["--drain-delay-ms", "0"] + list(extra)
        self.proc = None
        if start:
            self.start()

    def start(self):
        env = dict(os.environ)
        env["ASAN_OPTIONS"] = "detect_leaks=1:exitcode=99:abort_on_error=0"
        env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1:exitcode=98"
        self.log = open(self.log_path, "wb")
        cmd = [ARGS.testd, "--cert", self.cert, "--key", self.key, "--port", "0",
               "--plain-port", "0", "--port-file", self.port_file] + self.extra
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.log, env=env)
        deadline = time.time() + 10 * SLOW
        while not os.path.exists(self.port_file):
            if self.proc.poll() is not None:
                raise AssertionError("daemon exited at start: " + self.stderr())
            if time.time() > deadline:
                raise AssertionError("daemon did not start")
            time.sleep(0.01)
        tls, plain = read(self.port_file).split()
        self.port, self.plain_port = int(tls), int(plain)

    def stderr(self):
        try:
            return read(self.log_path).decode(errors="replace")
        except OSError:
            return ""

    def log_lines(self):
        return [json.loads(l) for l in self.stderr().splitlines() if l.startswith("{")]

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=None):
        """SIGTERM, wait, and check the exit status and sanitizer output. Returns the status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout or 30 * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("daemon did not exit after SIGTERM")
        self.log.close()
        self.check_sanitizers()
        return rc

    def check_sanitizers(self):
        text = self.stderr()
        if SANITIZER_RE.search(text):
            raise AssertionError("sanitizer report:\n" + text[-6000:])

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    # -- clients --

    def ctx(self, alpn=("http/1.1",), client=False, minv=None, maxv=None):
        c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        c.load_verify_locations(CERTS.ca)
        if alpn:
            c.set_alpn_protocols(list(alpn))
        if client:
            c.load_cert_chain(CERTS.client, CERTS.client_key)
        if minv:
            c.minimum_version = minv
        if maxv:
            c.maximum_version = maxv
        return c

    def tls_socket(self, timeout=5, **kw):
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=timeout * SLOW)
        try:
            return self.ctx(**kw).wrap_socket(raw, server_hostname="localhost")
        except BaseException:
            raw.close()
            raise

    def https(self, timeout=10, **kw):
        return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout * SLOW,
                                           context=self._host_ctx(**kw))

    def _host_ctx(self, **kw):
        c = self.ctx(**kw)
        c.check_hostname = False  # we connect to 127.0.0.1; the chain is still verified
        return c

    def plain(self, timeout=5):
        return http.client.HTTPConnection("127.0.0.1", self.plain_port, timeout=timeout * SLOW)

    def metrics(self):
        c = self.plain()
        c.request("GET", "/metrics")
        r = c.getresponse()
        body = r.read().decode()
        c.close()
        assert r.status == 200, r.status
        return parse_metrics(body)


def request(conn, method, path, body=None, ctype="application/json", headers=None):
    h = dict(headers or {})
    if ctype is not None:
        h["Content-Type"] = ctype
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    return r.status, r.read(), r


def post(d, path, body=b"{}", timeout=10, **kw):
    c = d.https(timeout=timeout)
    try:
        return request(c, "POST", path, body, **kw)
    finally:
        c.close()


# ---------------------------------------------------------------------------------------------
# Prometheus text format

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|'
                       r'\\[\\"n])*",?)*)\})? (-?[0-9.eE+-]+|\+Inf|-Inf|NaN)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """Parses strictly; returns {(name, frozenset(labels)): value} plus types."""
    samples, types, helps = {}, {}, set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split(" ")[2]
            assert name not in helps, "duplicate HELP " + name
            helps.add(name)
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge", "histogram"), line
            assert name not in types, "duplicate TYPE " + name
            types[name] = kind
            continue
        assert line and not line.startswith("#"), "unexpected line %r" % line
        m = SAMPLE_RE.match(line)
        assert m, "bad sample line %r" % line
        name, labels, value = m.group(1), m.group(3) or "", m.group(4)
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in types or family in types, "sample before its TYPE: " + line
        key = (name, frozenset(LABEL_RE.findall(labels)))
        assert key not in samples, "duplicate series " + line
        samples[key] = float(value)
    for name, kind in types.items():
        if kind != "histogram":
            continue
        series = {}
        for (n, labels), v in samples.items():
            if n == name + "_bucket":
                rest = frozenset(l for l in labels if l[0] != "le")
                le = dict(labels)["le"]
                series.setdefault(rest, []).append((float(le), v))
        for rest, buckets in series.items():
            buckets.sort()
            counts = [v for _, v in buckets]
            assert counts == sorted(counts), "buckets not cumulative: %s" % name
            assert buckets[-1][0] == float("inf"), "no +Inf bucket"
            assert samples[(name + "_count", rest)] == counts[-1], "count != +Inf bucket"
            assert (name + "_sum", rest) in samples
    return Metrics(samples, types)


class Metrics:
    def __init__(self, samples, types):
        self.samples, self.types = samples, types

    def get(self, name, **labels):
        return self.samples.get((name, frozenset(labels.items())), 0.0)


M = "flink_memory_webhook_"


def wait_for(pred, timeout, what):
    deadline = time.time() + timeout * SLOW
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


# ---------------------------------------------------------------------------------------------
# tests

def test_tls_handshake_and_alpn(d):
    s = d.tls_socket(alpn=("h2", "http/1.1"))
    assert s.selected_alpn_protocol() == "http/1.1", s.selected_alpn_protocol()
    assert s.version() == "TLSv1.3", s.version()
    s.close()
    # A client that speaks only h2 is refused at the handshake (RFC 7301 no_application_protocol).
    try:
        d.tls_socket(alpn=("h2",)).close()
        raise AssertionError("h2-only client accepted")
    except ssl.SSLError as e:
        assert "NO APPLICATION PROTOCOL" in str(e).upper().replace("_", " "), e
    # No ALPN at all is fine (plain HTTP/1.1 clients).
    s = d.tls_socket(alpn=None)
    assert s.selected_alpn_protocol() is None
    s.close()
    # openssl s_client with TLS 1.2 sees http/1.1 selected.
    out = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % d.port,
                          "-alpn", "http/1.1", "-tls1_2", "-CAfile", CERTS.ca,
                          "-servername", "localhost"],
                         input=b"", capture_output=True, timeout=10 * SLOW).stdout.decode()
    assert "ALPN protocol: http/1.1" in out, out
    assert "Protocol  : TLSv1.2" in out or "TLSv1.2" in out, out
    assert "Verify return code: 0 (ok)" in out, out


def test_old_tls_versions_refused(d):
    for version in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
        c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        c.check_hostname = False
        c.verify_mode = ssl.CERT_NONE
        c.set_ciphers("DEFAULT:@SECLEVEL=0")
        c.minimum_version = version
        c.maximum_version = version
        raw = socket.create_connection(("127.0.0.1", d.port), timeout=5 * SLOW)
        try:
            c.wrap_socket(raw).close()
            raise AssertionError("%s accepted" % version)
        except ssl.SSLError:
            pass
        finally:
            raw.close()
    for flag in ("-tls1", "-tls1_1"):
        p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % d.port, flag,
                            "-cipher", "DEFAULT:@SECLEVEL=0"],
                           input=b"", capture_output=True, timeout=10 * SLOW)
        assert p.returncode != 0, flag
    s = d.tls_socket(maxv=ssl.TLSVersion.TLSv1_2)
    assert s.version() == "TLSv1.2"
    s.close()
    assert d.metrics().get(M + "tls_handshake_errors_total") >= 4


def test_tls13_only():
    d = Daemon("--tls13-only")
    try:
        try:
            d.tls_socket(maxv=ssl.TLSVersion.TLSv1_2).close()
            raise AssertionError("TLS 1.2 accepted with --tls13-only")
        except ssl.SSLError:
            pass
        s = d.tls_socket()
        assert s.version() == "TLSv1.3"
        s.close()
    finally:
        assert d.stop() == 0


def test_keepalive_reuse(d):
    before = d.metrics().get(M + "http_connections_accepted_total")
    c = d.https()
    sock = None
    for i in range(10):
        body = json.dumps({"i": i}).encode()
        status, got, r = request(c, "POST", "/echo", body)
        assert status == 200 and got == body, (status, got)
        assert r.getheader("Connection") != "close"
        if sock is None:
            sock = c.sock
        assert c.sock is sock, "connection was not reused"
    c.close()
    after = d.metrics().get(M + "http_connections_accepted_total")
    assert after - before == 1, (before, after)
    # curl: several URLs in one invocation reuse one connection.
    url = "https://localhost:%d/echo" % d.port
    out = subprocess.run(["curl", "-sS", "-v", "--cacert", CERTS.ca, "--resolve",
                          "localhost:%d:127.0.0.1" % d.port, "-H", "Content-Type: application/json",
                          "-d", "{}", url, url, url], capture_output=True, timeout=20 * SLOW)
    assert out.returncode == 0, out.stderr
    assert out.stderr.decode().count("Re-using existing connection") == 2, out.stderr.decode()


def test_idle_keepalive_outlives_request_deadline():
    # The request deadline starts with a request's first byte, not when the connection goes idle.
    d = Daemon("--request-timeout-ms", "500")
    try:
        c = d.https()
        assert request(c, "POST", "/echo", b"{}")[0] == 200
        sock = c.sock
        time.sleep(1.2)
        assert request(c, "POST", "/echo", b"{}")[0] == 200
        assert c.sock is sock
        c.close()
    finally:
        assert d.stop() == 0


def test_query_string_ignored_in_routing(d):
    status, body, _ = post(d, "/mutate?timeout=10s", b'{"x":1}')
    assert status == 200, status
    got = json.loads(body)
    assert got["query"] == "timeout=10s" and got["len"] == 7, got
    assert 9000 <= got["budget_ms"] <= 10000, got
    # A shorter API-server timeout shortens the handler's deadline.
    got = json.loads(post(d, "/mutate?timeout=2s")[1])
    assert 1000 <= got["budget_ms"] <= 2000, got
    got = json.loads(post(d, "/mutate?timeout=1m30s&x=y")[1])
    assert 9000 <= got["budget_ms"] <= 10000, got  # capped by --handler-timeout (10 s)
    assert post(d, "/mutate?")[0] == 200
    assert post(d, "/echo?timeout=10s#frag")[0] == 200
    c = d.https()
    status, body, _ = request(c, "GET", "/healthz?verbose=1", ctype=None)
    assert status == 200 and body == b"ok\n"
    # Paths match exactly: no prefix or trailing-slash matches.
    assert post(d, "/mutate/")[0] == 404
    assert post(d, "/mutat")[0] == 404
    c.close()


def test_wrong_method(d):
    c = d.https()
    for method in ("GET", "PUT", "DELETE", "PATCH", "OPTIONS"):
        status, body, r = request(c, method, "/mutate", None if method == "GET" else b"{}")
        assert status == 405, (method, status)
        assert r.getheader("Allow") == "POST"
        assert json.loads(body)["error"]
    status, _, r = request(c, "POST", "/healthz", b"{}")
    assert status == 405 and r.getheader("Allow") == "GET, HEAD"
    status, body, _ = request(c, "HEAD", "/readyz", ctype=None)
    assert status == 200 and body == b""
    c.close()
    m = d.metrics()
    assert m.get(M + "http_requests_total", route="/mutate", code="405") == 5


def test_content_type(d):
    c = d.https()
    for ctype, want in (("text/plain", 415), (None, 415), ("application/jsonx", 415),
                        ("application/x-www-form-urlencoded", 415),
                        ("application/json", 200), ("application/json; charset=utf-8", 200),
                        ("Application/JSON", 200), (" application/json ;charset=UTF-8", 200)):
        status, _, _ = request(c, "POST", "/echo", b"{}", ctype=ctype)
        assert status == want, (ctype, status)
    c.close()


def test_body_cap(d):
    # Exactly the cap is accepted and echoed whole.
    body = b"[" + b"1," * ((7 * MIB - 3) // 2) + b"1]"
    body = body + b" " * (7 * MIB - len(body))
    assert len(body) == 7 * MIB
    status, got, _ = post(d, "/echo", body, timeout=60)
    assert status == 200 and got == body, (status, len(got))
    # Declared past the cap: 413 before the body is read.
    s = d.tls_socket()
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n" % (7 * MIB + 1))
    resp = s.recv(4096)
    assert resp.startswith(b"HTTP/1.1 413"), resp
    s.close()
    # curl with Expect: 100-continue gets the 413 without sending the body.
    big = os.path.join(d.dir, "big.json")
    with open(big, "wb") as f:
        f.write(b" " * (8 * MIB))
    out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert",
                          CERTS.ca, "--resolve", "localhost:%d:127.0.0.1" % d.port,
                          "-H", "Content-Type: application/json", "--data-binary", "@" + big,
                          "https://localhost:%d/echo" % d.port],
                         capture_output=True, timeout=60 * SLOW)
    assert out.stdout == b"413", (out.stdout, out.stderr)
    # Chunked past the cap: refused too (413 or a closed connection, never a 200).
    s = d.tls_socket()
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n%s\r\n" % (MIB, b" " * MIB)
    got = b""
    try:
        for _ in range(9):
            s.sendall(chunk)
        s.sendall(b"0\r\n\r\n")
        got = s.recv(4096)
    except (ConnectionError, ssl.SSLError, socket.timeout):
        pass
    assert not got.startswith(b"HTTP/1.1 200"), got
    s.close()
    assert d.proc.poll() is None
    assert post(d, "/echo")[0] == 200


def test_headers_cap(d):
    s = d.tls_socket()
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
    resp = b""
    try:
        resp = s.recv(4096)
    except (ConnectionError, ssl.SSLError):
        pass
    assert resp == b"" or resp.startswith(b"HTTP/1.1 400"), resp
    s.close()
    assert post(d, "/echo")[0] == 200


def trickle_until_closed(s, data, interval):
    """Sends one byte at a time; returns the seconds until the server closed the connection."""
    t0 = time.time()
    s.settimeout(interval)
    for i in range(len(data)):
        try:
            s.sendall(data[i:i + 1])
            got = s.recv(1024)
            if got == b"":
                return time.time() - t0
            raise AssertionError("unexpected response %r" % got)
        except socket.timeout:
            continue
        except (ConnectionError, ssl.SSLError, BrokenPipeError):
            return time.time() - t0
    raise AssertionError("server never closed the slow connection")


def test_slow_clients_cut_by_deadline():
    d = Daemon("--request-timeout-ms", "1000")
    try:
        # Headers one byte every 100 ms: never idle long, but never complete.
        s = d.tls_socket()
        took = trickle_until_closed(s, b"POST /echo HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 200,
                                    0.1)
        assert 0.8 <= took <= 2.5 * SLOW, took
        s.close()
        # Complete headers, body one byte at a time.
        s = d.tls_socket()
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 1000\r\n\r\n")
        took = trickle_until_closed(s, b" " * 1000, 0.1)
        assert 0.8 <= took <= 2.5 * SLOW, took
        s.close()
        # A TCP connection that never starts TLS.
        raw = socket.create_connection(("127.0.0.1", d.port), timeout=5 * SLOW)
        t0 = time.time()
        assert raw.recv(10) == b""
        assert time.time() - t0 <= 2.5 * SLOW
        raw.close()
        # Handshake done, then silence.
        s = d.tls_socket()
        t0 = time.time()
        try:
            assert s.recv(10) == b""
        except (ConnectionError, ssl.SSLError):
            pass
        assert time.time() - t0 <= 2.5 * SLOW
        s.close()
        m = d.metrics()
        assert m.get(M + "http_request_deadline_closes_total") >= 4, m.samples
        assert post(d, "/echo")[0] == 200
    finally:
        assert d.stop() == 0


def test_client_disconnects(d):
    # Mid-body.
    for _ in range(5):
        s = d.tls_socket()
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100000\r\n\r\n" + b" " * 3000)
        s.close()
    # Mid-headers, and abruptly (RST) mid-body.
    s = d.tls_socket()
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-")
    s.close()
    raw = socket.create_connection(("127.0.0.1", d.port))
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s = d.ctx().wrap_socket(raw, server_hostname="localhost")
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: 100000\r\n\r\n" + b" " * 3000)
    s.close()
    # While the handler runs: the response has nowhere to go, the server must not mind.
    for _ in range(3):
        s = d.tls_socket()
        s.sendall(b"POST /slow?delay_ms=300 HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
        s.close()
    time.sleep(0.6 * SLOW)
    assert d.proc.poll() is None
    assert post(d, "/echo")[0] == 200
    wait_for(lambda: d.metrics().get(M + "http_requests_in_flight") == 0, 5, "in-flight to drop")
    wait_for(lambda: d.metrics().get(M + "http_connections") == 0, 5, "connections to close")


MALFORMED = [
    b"\r\n\r\n",
    b"GARBAGE\r\n\r\n",
    b"GET\r\n\r\n",
    b"GET /healthz\r\n\r\n",
    b"GET /healthz HTTP/9.9\r\n\r\n",
    b"G\x00T /healthz HTTP/1.1\r\n\r\n",
    b"GET /he\x00lthz HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET http://evil/healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    b"CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Content-Length: -5\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Content-Length: 99999999999999999999999\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Transfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n{}\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Transfer-Encoding: gzip\r\n\r\n{}",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Expect: 100-banana\r\nContent-Length: 2\r\n\r\n{}",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\n: empty-name\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
    b"GET /" + b"a" * 30000 + b" HTTP/1.1\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\n" + b"X: y\r\n" * 5000 + b"\r\n",
    bytes(range(256)) * 4,
]


def test_malformed_requests_never_crash(d):
    # Each on its own connection: the server answers 4xx/5xx or closes, and keeps serving.
    for raw in MALFORMED:
        s = d.tls_socket()
        try:
            s.sendall(raw)
            s.settimeout(2 * SLOW)
            got = s.recv(4096)
        except (ConnectionError, ssl.SSLError, socket.timeout):
            got = b""
        finally:
            s.close()
        if got:
            assert re.match(rb"HTTP/1\.[01] [1-5]\d\d ", got), (raw[:60], got[:80])
            assert not got.startswith(b"HTTP/1.1 200") or raw.startswith(b"GET /healthz"), \
                (raw[:60], got[:80])
        assert d.proc.poll() is None, "daemon died on %r" % raw[:60]
    # Plain text and random bytes where a TLS handshake is expected.
    for raw in (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", os.urandom(5000),
                b"\x16\x03\x01\x00\x05hello"):
        c = socket.create_connection(("127.0.0.1", d.port), timeout=5 * SLOW)
        try:
            c.sendall(raw)
            c.recv(4096)
        except (ConnectionError, socket.timeout):
            pass
        c.close()
    assert d.proc.poll() is None
    assert post(d, "/echo")[0] == 200


def test_concurrent_requests(d):
    errors = []

    def client(n):
        try:
            c = d.https(timeout=30)
            for i in range(15):
                if i % 5 == 4:
                    status, body, _ = request(c, "POST", "/slow?delay_ms=20", b"{}")
                    assert status == 200 and json.loads(body) == {"slept_ms": 20}, body
                else:
                    payload = json.dumps({"client": n, "i": i, "pad": "x" * (n * 97)}).encode()
                    status, body, _ = request(c, "POST", "/echo", payload)
                    assert status == 200 and body == payload, (status, body[:80])
            c.close()
        except Exception as e:  # collected, reported below
            errors.append("client %d: %r" % (n, e))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    m = d.metrics()
    assert m.get(M + "http_requests_total", route="/echo", code="200") == 24 * 12
    assert m.get(M + "http_requests_total", route="/slow", code="200") == 24 * 3


def test_overload_answers_503_after_deadline():
    # One worker busy for 1 s; a request whose 300 ms deadline passes while it waits for the
    # worker is answered 503 without running its handler.
    d = Daemon("--workers", "1", "--handler-timeout-ms", "300")
    try:
        t = threading.Thread(target=lambda: post(d, "/slow?delay_ms=1000"))
        t.start()
        time.sleep(0.2 * SLOW)
        status, body, _ = post(d, "/mutate")
        assert status == 503 and json.loads(body) == {"error": "overloaded"}, (status, body)
        t.join()
        assert d.metrics().get(M + "testd_handled_total", handler="mutate") == 0
        assert post(d, "/mutate")[0] == 200
    finally:
        assert d.stop() == 0


def test_handler_error_and_404(d):
    status, body, _ = post(d, "/fail")
    assert status == 500 and b"partial" not in body, (status, body)
    for path in ("/nope", "/a/b/c", "/" + "x" * 1000):
        assert post(d, path)[0] == 404
    m = d.metrics()
    assert m.get(M + "http_requests_total", route="unmatched", code="404") == 3
    assert not any(("route", "/nope") in labels for _, labels in m.samples), "path leaked into labels"
    assert any(l.get("msg") == "handler failed" for l in d.log_lines())


def test_inline_first_route():
    # A small request to an inline_first route is answered on the loop thread; one whose handler
    # says it would wait (FMW_EAGAIN) is answered from a worker, and nothing of the attempt on
    # the loop (its partial body, its status) reaches the client; a body over inline_max_body
    # goes straight to a worker.
    d = Daemon("--inline-max-body", "4096")
    try:
        status, body, _ = post(d, "/inline", b'{"a":1}')
        assert status == 200 and json.loads(body) == {"on_loop": True, "len": 7}, (status, body)
        status, body, _ = post(d, "/inline?wait=1", b'{"a":1}')
        assert status == 200 and json.loads(body) == {"on_loop": False, "len": 7}, (status, body)
        big = b'{"a":"' + b"x" * 5000 + b'"}'
        status, body, _ = post(d, "/inline", big)
        assert status == 200 and json.loads(body) == {"on_loop": False, "len": len(big)}, body
        # Keep-alive: a connection is served inline, then from a worker, then inline again.
        c = d.https()
        for q, on_loop in (("", True), ("?wait=1", False), ("", True)):
            status, body, _ = request(c, "POST", "/inline" + q, b"{}")
            assert status == 200 and json.loads(body)["on_loop"] is on_loop, (q, status, body)
        c.close()
        m = d.metrics()
        handled = M + "testd_handled_total"
        assert m.get(handled, handler="inline-loop") == 3
        assert m.get(handled, handler="inline-deferred") == 2
        assert m.get(handled, handler="inline-worker") == 3
        # Every request counted once, however many attempts it took.
        assert m.get(M + "http_requests_total", route="/inline", code="200") == 6
        assert m.get(M + "http_requests_in_flight") == 0
    finally:
        assert d.stop() == 0


def read_response(s, timeout=5):
    """One whole response from socket `s` (Content-Length framed): (status, headers, body)."""
    s.settimeout(timeout * SLOW)
    data = b""
    while b"\r\n\r\n" not in data:
        got = s.recv(65536)
        if not got:
            raise AssertionError("connection closed after %r" % data[:200])
        data += got
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
    n = int(headers.get("content-length", "0"))
    while len(body) < n:
        got = s.recv(65536)
        if not got:
            raise AssertionError("body cut short")
        body += got
    return int(lines[0].split()[1]), headers, body


def test_bodies_over_one_tls_record(d):
    # Regression: a request between 16 and 32 KiB, one sendall, left its end inside OpenSSL's
    # read-ahead buffer (invisible to epoll) and waited for the request deadline.
    for size in (16000, 16385, 17000, 20000, 30000, 33000, 100000):
        body = b'{"x":"' + b"y" * (size - 8) + b'"}'
        s = d.tls_socket()
        t0 = time.time()
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body) + body)
        status, _, got = read_response(s)
        s.close()
        assert status == 200 and got == body, (size, status, len(got))
        assert time.time() - t0 < 2 * SLOW, (size, time.time() - t0)
    # Pipelined behind a small one on the same connection.
    s = d.tls_socket()
    body = b'{"x":"' + b"y" * 19992 + b'"}'
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: 2\r\n\r\n{}" +
              b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n" % len(body) + body)
    assert read_response(s)[2] == b"{}"
    assert read_response(s)[2] == body
    s.close()


def test_empty_lines_before_a_request(d):
    # RFC 9112 2.2: ignored, even when they arrive in pieces...
    s = d.tls_socket()
    s.sendall(b"\r\n")
    time.sleep(0.05)
    s.sendall(b"\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    status, _, body = read_response(s)
    assert status == 200 and body == b"ok\n", (status, body)
    s.close()
    # ...but they count against the head cap: a head that is too long after them is refused
    # (it once made the loop spin on unread bytes instead).
    raw = socket.create_connection(("127.0.0.1", d.plain_port), timeout=5 * SLOW)
    raw.sendall(b"\r\n" + b"X-A: " + b"a" * 16378 + b"\r\n")
    raw.sendall(b"more")
    got = b""
    try:
        while True:
            chunk = raw.recv(4096)
            if not chunk:
                break
            got += chunk
    except (ConnectionError, socket.timeout):
        pass
    raw.close()
    assert got.startswith(b"HTTP/1.1 400"), got[:80]
    assert post(d, "/echo")[0] == 200


def test_expect_continue(d):
    # A body the server will take: 100 Continue first, then the answer.
    s = d.tls_socket()
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Expect: 100-continue\r\nContent-Length: 7\r\n\r\n")
    s.settimeout(5 * SLOW)
    interim = s.recv(4096)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n", interim
    s.sendall(b'{"a":1}')
    status, _, body = read_response(s)
    assert status == 200 and body == b'{"a":1}', (status, body)
    s.close()
    # One it would refuse whatever the body: the final answer at once, no 100, and the
    # connection closes (the body would follow).
    for path, ctype, want in (("/nowhere", "application/json", 404),
                              ("/echo", "text/plain", 415)):
        s = d.tls_socket()
        s.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\n"
                  b"Expect: 100-continue\r\nContent-Length: 100000\r\n\r\n"
                  % (path.encode(), ctype.encode()))
        status, headers, _ = read_response(s)
        assert status == want and headers.get("connection") == "close", (path, status, headers)
        s.close()


def test_http10_keep_alive_is_said(d):
    s = d.tls_socket()
    s.sendall(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    status, headers, _ = read_response(s)
    assert status == 200 and headers.get("connection") == "keep-alive", headers
    s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
    status, headers, _ = read_response(s)
    assert status == 200 and headers.get("connection") == "close", headers
    s.close()
    # HTTP/1.1 needs exactly one Host.
    s = d.tls_socket()
    s.sendall(b"GET /healthz HTTP/1.1\r\n\r\n")
    assert read_response(s)[0] == 400
    s.close()


def test_chunked_body_cap_is_the_cap():
    d = Daemon("--max-body", "100")
    try:
        for size, want in ((100, 200), (101, 413)):
            body = b'"' + b"x" * (size - 2) + b'"'
            chunks = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
            s = d.tls_socket()
            s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n" + chunks)
            status = read_response(s)[0]
            s.close()
            assert status == want, (size, status)
    finally:
        assert d.stop() == 0


def test_drain_does_not_wait_for_silent_new_connections():
    # A connection that finished its handshake and sent nothing is idle: SIGTERM with no drain
    # delay ends at once, not at the request deadline (10 s).
    d = Daemon("--drain-delay-ms", "0")
    try:
        s = d.tls_socket()
        t0 = time.time()
        d.signal(signal.SIGTERM)
        rc = d.proc.wait(timeout=20 * SLOW)
        assert rc == 0 and time.time() - t0 < 3 * SLOW, (rc, time.time() - t0)
        s.close()
    finally:
        d.kill()


def test_big_response(d):
    status, body, r = post(d, "/big?bytes=3000000")
    assert status == 200 and len(body) == 3000000 and set(body) == {ord("x")}
    assert r.getheader("Content-Type") == "application/octet-stream"
    # Past the response cap (7 MiB) the handler gets ETOOBIG and the server answers 500.
    assert post(d, "/big?bytes=%d" % (8 * MIB))[0] == 500


def slow_reader_socket(d):
    """A TLS connection whose receive buffer is small, so the server's socket fills quickly."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(10 * SLOW)
    raw.connect(("127.0.0.1", d.port))
    return d.ctx().wrap_socket(raw, server_hostname="localhost")


BIG_REQUEST = (b"POST /big?bytes=3000000 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: 2\r\n\r\n{}")


def test_stalled_reader_closed_after_idle_timeout():
    """A client that asks for a 3 MB answer and stops reading: the server's socket fills, it waits
    for it to drain (the write event, with reading paused) no longer than the idle timeout, and
    closes; the answer is cut short, and other clients are served meanwhile."""
    d = Daemon("--idle-timeout-ms", "1000")
    try:
        s = slow_reader_socket(d)
        s.sendall(BIG_REQUEST)
        time.sleep(0.3)
        assert post(d, "/echo")[0] == 200  # the loop is not held up by the stalled write
        time.sleep(1.0 + 1.0 * SLOW)  # past the idle timeout, not reading
        got, closed = 0, False
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    closed = True
                    break
                got += len(chunk)
        except (ConnectionError, ssl.SSLError, socket.timeout) as e:
            closed = not isinstance(e, socket.timeout)
        s.close()
        assert closed and got < 3000000, (closed, got)
        assert post(d, "/echo")[0] == 200
    finally:
        assert d.stop() == 0


def test_slow_steady_reader_gets_the_whole_answer():
    """A client that reads the 3 MB answer slowly but steadily (about 1 MB/s, so the whole takes
    longer than the idle timeout, and the server's socket stays full): each idle timeout it took
    more than the 256 KiB asked, so it is never closed under it."""
    d = Daemon("--idle-timeout-ms", "1000")
    try:
        s = slow_reader_socket(d)
        s.sendall(BIG_REQUEST)
        data, t0 = b"", time.time()
        while b"\r\n\r\n" not in data:
            data += s.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        paced = 0
        while len(body) < 3000000:
            chunk = s.recv(256 * 1024)
            assert chunk, "closed after %d bytes, %.2f s" % (len(body), time.time() - t0)
            body += chunk
            paced += len(chunk)
            if paced >= 64 * 1024:
                paced = 0
                time.sleep(0.05)  # at most about 1.3 MB/s
        assert len(body) == 3000000 and time.time() - t0 > 1.0
        s.close()
    finally:
        assert d.stop() == 0


def test_trickle_reader_is_closed():
    """A client that reads a trickle of a 3 MB answer (8 KB every 0.5 s, about 16 KB/s) keeps
    taking bytes but not enough: at least a quarter of what is left, or 256 KiB, must go per idle
    timeout, so it is closed within a few timeouts instead of holding the connection for hours."""
    d = Daemon("--idle-timeout-ms", "1000")
    try:
        s = slow_reader_socket(d)
        s.sendall(BIG_REQUEST)
        got, t0, closed = 0, time.time(), False
        while time.time() - t0 < 15 * SLOW:
            try:
                chunk = s.recv(8192)
            except (ConnectionError, ssl.SSLError):
                closed = True
                break
            if not chunk:
                closed = True
                break
            got += len(chunk)
            time.sleep(0.5)
        s.close()
        assert closed and got < 3000000, (closed, got, time.time() - t0)
        assert post(d, "/echo")[0] == 200
    finally:
        assert d.stop() == 0


def swap_k8s(mount, cert, key, n):
    """Updates `mount` the way the kubelet updates a Secret volume: a new timestamped dir, then
    an atomic rename of the ..data symlink; tls.crt/tls.key are symlinks through ..data."""
    new = os.path.join(mount, "..2026_%02d" % n)
    os.mkdir(new)
    shutil.copy(cert, os.path.join(new, "tls.crt"))
    shutil.copy(key, os.path.join(new, "tls.key"))
    tmp = os.path.join(mount, "..data_tmp")
    os.symlink(os.path.basename(new), tmp)
    os.rename(tmp, os.path.join(mount, "..data"))
    for name in ("tls.crt", "tls.key"):
        link = os.path.join(mount, name)
        if not os.path.islink(link):
            os.symlink(os.path.join("..data", name), link)


class Hammer:
    """Requests in a loop, each on a new connection (new handshake), counting failures."""

    def __init__(self, d):
        self.d, self.failures, self.count, self.stop = d, [], 0, False
        self.t = threading.Thread(target=self.run)
        self.t.start()

    def run(self):
        while not self.stop:
            try:
                status, _, _ = post(self.d, "/echo")
                if status != 200:
                    self.failures.append(status)
                self.count += 1
            except Exception as e:
                self.failures.append(repr(e))

    def finish(self):
        self.stop = True
        self.t.join()
        assert not self.failures, self.failures[:5]
        assert self.count > 10, self.count


def peer_der(d):
    s = d.tls_socket()
    der = s.getpeercert(binary_form=True)
    s.close()
    return der


def test_cert_rotation_in_place(d):
    assert peer_der(d) == der_of(CERTS.a)
    h = Hammer(d)
    time.sleep(0.3)
    write(d.cert, read(CERTS.b))
    write(d.key, read(CERTS.b_key))
    wait_for(lambda: peer_der(d) == der_of(CERTS.b), 5, "the new certificate")
    time.sleep(0.3)
    # A bad pair (certificate a with a key that is not its own) keeps b.
    write(d.cert, read(CERTS.a))
    write(d.key, read(CERTS.stray_key))
    wait_for(lambda: d.metrics().get(M + "cert_reloads_total", result="failure") >= 1, 5,
             "a counted failure")
    time.sleep(0.3)
    assert peer_der(d) == der_of(CERTS.b)
    # Garbage too.
    write(d.cert, b"not a certificate\n")
    time.sleep(0.5)
    assert peer_der(d) == der_of(CERTS.b)
    h.finish()
    m = d.metrics()
    assert m.get(M + "cert_reloads_total", result="success") == 1, m.samples
    assert m.get(M + "cert_not_after_timestamp_seconds") > time.time()
    # SIGHUP asks for a check at once; a good pair again is taken.
    write(d.cert, read(CERTS.a))
    write(d.key, read(CERTS.a_key))
    d.signal(signal.SIGHUP)
    wait_for(lambda: peer_der(d) == der_of(CERTS.a), 5, "certificate a back")


def test_fifo_at_the_cert_path_does_not_block(d):
    """A FIFO where the certificate was, then SIGHUP: the reload fails at once (nothing opens the
    FIFO's other end), the old certificate stays, and the loop goes on serving. Reading it had
    blocked the event loop."""
    os.remove(d.cert)
    os.mkfifo(d.cert)
    d.signal(signal.SIGHUP)
    wait_for(lambda: "is not a regular file" in d.stderr(), 5, "the reload refused")
    t0 = time.time()
    assert post(d, "/echo")[0] == 200
    assert time.time() - t0 < 2 * SLOW
    assert peer_der(d) == der_of(CERTS.a)
    os.remove(d.cert)
    write(d.cert, read(CERTS.a))


def test_cert_rotation_kubernetes_symlinks():
    mount = tempfile.mkdtemp(prefix="fmw-secret-")
    swap_k8s(mount, CERTS.a, CERTS.a_key, 1)
    d = Daemon(cert=os.path.join(mount, "tls.crt"), key=os.path.join(mount, "tls.key"))
    try:
        assert peer_der(d) == der_of(CERTS.a)
        h = Hammer(d)
        time.sleep(0.3)
        swap_k8s(mount, CERTS.b, CERTS.b_key, 2)
        wait_for(lambda: peer_der(d) == der_of(CERTS.b), 5, "the new certificate")
        # A bad pair swapped in atomically keeps b.
        swap_k8s(mount, CERTS.a, CERTS.stray_key, 3)
        wait_for(lambda: d.metrics().get(M + "cert_reloads_total", result="failure") == 1, 5,
                 "a counted failure")
        assert peer_der(d) == der_of(CERTS.b)
        h.finish()
        assert any(l.get("msg", "").startswith("certificate reload failed")
                   for l in d.log_lines())
    finally:
        assert d.stop() == 0
        shutil.rmtree(mount)


def test_periodic_check_without_events():
    # The periodic check alone picks up a change (inotify can be silent on some filesystems):
    # a file written before the daemon watches, with a mismatched start, fixed later by a
    # rename into a directory the daemon does not watch... simplest: shorten the period and
    # make the change invisible to inotify by writing through a hard link in another directory.
    other = tempfile.mkdtemp(prefix="fmw-other-")
    d = Daemon("--reload-ms", "300")
    try:
        # Hard links share the inode; writes through the other name raise events only on the
        # other directory.
        alias_cert = os.path.join(other, "c")
        alias_key = os.path.join(other, "k")
        os.link(d.cert, alias_cert)
        os.link(d.key, alias_key)
        write(alias_cert, read(CERTS.b))
        write(alias_key, read(CERTS.b_key))
        wait_for(lambda: peer_der(d) == der_of(CERTS.b), 5, "the periodic check")
    finally:
        assert d.stop() == 0
        shutil.rmtree(other)


def test_readyz_before_cert_and_client_certs():
    d = Daemon(start=False)
    os.unlink(d.cert)
    os.unlink(d.key)
    d.start()
    try:
        c = d.plain()
        c.request("GET", "/readyz")
        r = c.getresponse()
        assert r.status == 503 and r.read() == b"no certificate\n"
        c.request("GET", "/healthz")
        r = c.getresponse()
        assert r.status == 200 and r.read() == b"ok\n"
        c.request("POST", "/echo", body=b"{}", headers={"Content-Type": "application/json"})
        r = c.getresponse()
        assert r.status == 404, "handler routes must not be served in plain HTTP"
        r.read()
        c.close()
        try:
            d.tls_socket().close()
            raise AssertionError("handshake without a certificate")
        except (ssl.SSLError, ConnectionError):
            pass
        shutil.copy(CERTS.a_key, d.key)
        shutil.copy(CERTS.a, d.cert)

        def ready():
            c = d.plain()
            c.request("GET", "/readyz")
            ok = c.getresponse().status == 200
            c.close()
            return ok
        wait_for(ready, 5, "readiness")
        assert post(d, "/echo")[0] == 200
        assert d.metrics().get(M + "ready") == 1
    finally:
        assert d.stop() == 0
    # Client certificates required.
    d = Daemon("--client-ca", CERTS.cca)
    try:
        try:
            s = d.tls_socket()
            # TLS 1.3 reports a refused client certificate on the first read.
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(100) == b""
            raise AssertionError("client without certificate served")
        except (ssl.SSLError, ConnectionError):
            pass
        c = d.https(client=True)
        assert request(c, "POST", "/echo", b"{}")[0] == 200
        c.close()
    finally:
        assert d.stop() == 0


def test_connection_cap():
    """At the cap a new connection makes room by closing the oldest idle one (keep-alive between
    requests); when every connection is mid-request, it waits in the backlog until one closes."""
    d = Daemon("--max-connections", "4")
    try:
        conns = []
        for _ in range(4):
            c = d.https()
            assert request(c, "POST", "/echo", b"{}")[0] == 200
            conns.append(c)
        assert d.metrics().get(M + "http_connections") == 4
        # A fifth is served at once: the oldest idle connection, the first, was closed for it.
        assert post(d, "/echo")[0] == 200
        try:
            request(conns[0], "POST", "/echo", b"{}")
            raise AssertionError("the oldest idle connection was kept past the cap")
        except (ConnectionError, http.client.HTTPException, OSError):
            pass
        for c in conns[1:]:
            assert request(c, "POST", "/echo", b"{}")[0] == 200
        for c in conns:
            c.close()
        wait_for(lambda: d.metrics().get(M + "http_connections") == 0, 5, "connections closed")

        # Four connections each holding half a request: none is idle, so a fifth waits.
        busy = [d.tls_socket() for _ in range(4)]
        for s in busy:
            s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\n")
        wait_for(lambda: d.metrics().get(M + "http_connections") == 4, 5, "four busy connections")
        raw = socket.create_connection(("127.0.0.1", d.port), timeout=0.5)
        try:
            d.ctx().wrap_socket(raw, server_hostname="localhost")
            raise AssertionError("fifth connection served past the cap")
        except (socket.timeout, ssl.SSLError, OSError):
            pass
        raw.close()
        results = []
        def fifth_post():
            try:
                results.append(post(d, "/echo"))
            except Exception as e:  # noqa: BLE001 -- reported below
                results.append(("error", repr(e)))
        fifth = threading.Thread(target=fifth_post)
        fifth.start()
        time.sleep(0.3)
        busy[0].close()
        fifth.join(10 * SLOW)
        assert not fifth.is_alive()
        assert results and results[0][0] == 200, results
        for s in busy[1:]:
            s.close()
    finally:
        assert d.stop() == 0


def test_sigterm_drain():
    d = Daemon("--drain-delay-ms", "1000", "--grace-ms", "8000", "--workers", "6")
    results = {}

    def slow(n):
        try:
            c = d.https(timeout=30)
            status, body, r = request(c, "POST", "/slow?delay_ms=2000", b"{}")
            results[n] = (status, r.getheader("Connection"))
        except Exception as e:
            results[n] = repr(e)

    try:
        idle = d.https()
        assert request(idle, "POST", "/echo", b"{}")[0] == 200
        threads = [threading.Thread(target=slow, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.3 * SLOW)
        t_term = time.time()
        d.signal(signal.SIGTERM)
        time.sleep(0.1)
        # Not ready at once, still serving during the drain delay (new connections too).
        c = d.plain()
        c.request("GET", "/readyz")
        r = c.getresponse()
        assert r.status == 503 and r.read() == b"draining\n", r.status
        c.close()
        assert post(d, "/echo")[0] == 200
        assert request(idle, "POST", "/echo", b"{}")[0] == 200
        # After the delay: the idle keep-alive connection is closed by the server...
        idle.sock.settimeout(3 * SLOW)
        try:
            assert idle.sock.recv(10) == b""
        except (ConnectionError, ssl.SSLError):
            pass
        assert time.time() - t_term >= 0.9
        # ...new connections are refused...
        try:
            socket.create_connection(("127.0.0.1", d.port), timeout=1).close()
            raise AssertionError("listener still open")
        except OSError:
            pass
        # ...and the in-flight requests all complete, told the connection closes.
        for t in threads:
            t.join(15 * SLOW)
        assert results == {n: (200, "close") for n in range(4)}, results
        rc = d.proc.wait(timeout=10 * SLOW)
        took = time.time() - t_term
        assert rc == 0, rc
        assert took < 8, took
        d.log.close()
        d.check_sanitizers()
        msgs = [l["msg"] for l in d.log_lines()]
        assert "drained, stopping" in msgs, msgs
    finally:
        d.kill()


def test_sigterm_grace_exceeded():
    d = Daemon("--drain-delay-ms", "0", "--grace-ms", "700")
    try:
        def doomed():
            try:
                post(d, "/slow?delay_ms=5000", timeout=30)
            except (ConnectionError, http.client.HTTPException):
                pass  # dropped at the end of the grace period, as intended
        t = threading.Thread(target=doomed)
        t.daemon = True
        t.start()
        time.sleep(0.3 * SLOW)
        t0 = time.time()
        d.signal(signal.SIGTERM)
        rc = d.proc.wait(timeout=10 * SLOW)
        assert rc == 3, rc
        assert time.time() - t0 < 2.5 * SLOW, time.time() - t0
        d.log.close()
        d.check_sanitizers()
    finally:
        d.kill()


def test_metrics_and_logs(d):
    post(d, "/mutate?timeout=10s")
    post(d, "/echo")
    c = d.https()
    status, body, r = request(c, "GET", "/metrics", ctype=None)
    c.close()
    assert status == 200
    assert r.getheader("Content-Type").startswith("text/plain; version=0.0.4")
    m = parse_metrics(body.decode())
    for name, kind in (("http_requests_total", "counter"),
                       ("http_request_duration_seconds", "histogram"),
                       ("http_requests_in_flight", "gauge"), ("http_connections", "gauge"),
                       ("cert_reloads_total", "counter"), ("tls_handshake_errors_total", "counter"),
                       ("cert_not_after_timestamp_seconds", "gauge"), ("ready", "gauge"),
                       ("testd_handled_total", "counter")):
        assert m.types.get(M + name) == kind, (name, m.types.get(M + name))
    assert m.get(M + "http_requests_total", route="/mutate", code="200") == 1
    assert m.get(M + "testd_handled_total", handler="mutate") == 1
    # Sub-millisecond buckets exist (timing itself is not asserted: the machine may be busy).
    les = {dict(l)["le"] for (n, l) in m.samples if n == M + "http_request_duration_seconds_bucket"}
    assert {"0.0001", "0.00025", "0.0005", "0.001", "+Inf"} <= les, les
    assert m.get(M + "http_request_duration_seconds_bucket", route="/echo", le="+Inf") == 1
    assert m.get(M + "http_request_duration_seconds_count", route="/echo") == 1
    # Logs: JSON lines only, never the redacted value.
    text = d.stderr()
    for line in text.splitlines():
        if SANITIZER_RE.search(line) is None and line.strip():
            obj = json.loads(line)
            assert {"ts", "level", "msg"} <= obj.keys(), obj
    assert "must-not-appear" not in text
    assert any(l.get("msg") == "decision" and l.get("token") == "[redacted]"
               for l in d.log_lines())


# ---------------------------------------------------------------------------------------------
# runner

def main():
    global ARGS, CERTS, SLOW
    p = argparse.ArgumentParser()
    p.add_argument("--testd", required=True)
    p.add_argument("--sanitized", action="store_true")
    p.add_argument("-k", default="")
    ARGS = p.parse_args()
    if ARGS.sanitized:
        SLOW = 3.0
    root = tempfile.mkdtemp(prefix="fmw-certs-")
    CERTS = Certs(root)
    tests = [(n, f) for n, f in sorted(globals().items(), key=lambda kv: kv[1].__code__.co_firstlineno
                                       if callable(kv[1]) and hasattr(kv[1], "__code__") else 0)
             if n.startswith("test_") and callable(f) and ARGS.k in n]
    passed = failed = 0
    suite = "server-tests" + ("-asan" if ARGS.sanitized else "")
    for name, fn in tests:
        t0 = time.time()
        d = None
        try:
            if fn.__code__.co_argcount == 1:
                d = Daemon()
                fn(d)
                rc = d.stop()
                assert rc == 0, "daemon exit status %d" % rc
            else:
                fn()
            passed += 1
            print("ok   %-45s %.2fs" % (name, time.time() - t0), flush=True)
        except Exception:
            failed += 1
            print("FAIL %-45s %.2fs" % (name, time.time() - t0), flush=True)
            traceback.print_exc()
            for dd in DAEMONS:
                dd.kill()
                print("--- daemon stderr (tail) ---\n" + dd.stderr()[-3000:], flush=True)
        for dd in DAEMONS:
            dd.kill()
            shutil.rmtree(dd.dir, ignore_errors=True)
        DAEMONS.clear()
    shutil.rmtree(root, ignore_errors=True)
    print("%s: %d passed, %d failed" % (suite, passed, failed))
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
