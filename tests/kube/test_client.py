"""pkg/kube's API client (build/tests/kube-get) against scripted HTTP servers on loopback.

Each server answers every request on every connection with a function of (connection number,
request number on it, the request), so a test can send any framing, close or stall at any point,
and then check what the client saw and sent. Certificates come from the openssl command.
KUBE_GET names the binary (the Makefile sets it; `make asan` runs a sanitized one).
"""
import base64
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import pytest
import yaml

KUBE_GET = os.environ.get("KUBE_GET", "build/tests/kube-get")
SANITIZED = os.environ.get("KUBE_GET_SANITIZED") == "1"


def run(cmd):
    subprocess.run(cmd, check=True, capture_output=True)


class Pki:
    """A CA and a server pair for localhost/127.0.0.1/::1, a second CA, a pair for another name,
    and a client pair."""

    def __init__(self, root):
        self.root = root
        self.ca_key, self.ca = self.make_ca("ca")
        self.other_ca_key, self.other_ca = self.make_ca("other-ca")
        self.server_key, self.server = self.leaf("server", self.ca, self.ca_key,
                                                 "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1")
        self.wrong_key, self.wrong = self.leaf("wrong", self.ca, self.ca_key,
                                               "subjectAltName=DNS:api.example")
        self.client_key, self.client = self.leaf("client", self.ca, self.ca_key,
                                                 "extendedKeyUsage=clientAuth")

    def p(self, name):
        return os.path.join(self.root, name)

    def key(self, name):
        path = self.p(name + ".key")
        run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", path])
        return path

    def make_ca(self, name):
        key = self.key(name)
        crt = self.p(name + ".crt")
        run(["openssl", "req", "-x509", "-new", "-key", key, "-out", crt, "-days", "2",
             "-subj", "/CN=" + name, "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        return key, crt

    def leaf(self, name, ca, ca_key, ext_line):
        key = self.key(name)
        csr, crt, ext = self.p(name + ".csr"), self.p(name + ".crt"), self.p(name + ".ext")
        with open(ext, "w") as f:
            f.write(ext_line + "\n")
        run(["openssl", "req", "-new", "-key", key, "-out", csr, "-subj", "/CN=" + name])
        run(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key,
             "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", ext])
        return key, crt


@pytest.fixture(scope="session")
def pki():
    with tempfile.TemporaryDirectory(prefix="fmw-kube-pki-") as d:
        yield Pki(d)


def b64(path):
    with open(path, "rb") as f:
        return base64.b64encode(f.read()).decode()


class Server:
    """A loopback HTTP(S) server. `answer(conn_no, req_no, request)` returns a list of steps:
    bytes to send, a float to sleep, "close" to close the connection, "hang" to stop answering.
    With tls_handshake=False the socket accepts and never speaks TLS."""

    def __init__(self, answer, pki=None, cert=None, key=None, client_ca=None, family=socket.AF_INET,
                 tls=True, tls_handshake=True):
        self.answer, self.requests, self.connections = answer, [], 0
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.ctx = None
        if tls and tls_handshake:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(cert or pki.server, key or pki.server_key)
            if client_ca:
                self.ctx.verify_mode = ssl.CERT_REQUIRED
                self.ctx.load_verify_locations(client_ca)
        self.tls_handshake = tls_handshake
        self.held = []
        self.stop = threading.Event()
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def accept_loop(self):
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self.serve, args=(conn, self.connections), daemon=True).start()

    def serve(self, conn, conn_no):
        if not self.tls_handshake:
            self.held.append(conn)  # never answered, closed at the end
            return
        try:
            if self.ctx:
                conn = self.ctx.wrap_socket(conn, server_side=True)
            buf = b""
            req_no = 0
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode().split("\r\n")
                method, target, version = lines[0].split(" ")
                headers = {}
                for line in lines[1:]:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
                request = {"method": method, "path": target, "version": version,
                           "headers": headers, "conn": conn_no}
                self.requests.append(request)
                req_no += 1
                for step in self.answer(conn_no, req_no, request):
                    if step == "close":
                        conn.close()
                        return
                    if step == "hang":
                        self.held.append(conn)
                        return
                    if isinstance(step, float):
                        time.sleep(step)
                    else:
                        conn.sendall(step)
        except (OSError, ssl.SSLError, ValueError):
            try:
                conn.close()
            except OSError:
                pass

    def close(self):
        self.stop.set()
        self.sock.close()
        for c in self.held:
            try:
                c.close()
            except OSError:
                pass


def kubeconfig(tmp_path, server, pki=None, user=None, cluster_extra=None):
    cluster = {"server": server}
    if pki:
        cluster["certificate-authority-data"] = b64(pki.ca)
    cluster.update(cluster_extra or {})
    doc = {"apiVersion": "v1", "kind": "Config", "current-context": "t",
           "contexts": [{"name": "t", "context": {"cluster": "c", "user": "u"}}],
           "clusters": [{"name": "c", "cluster": cluster}],
           "users": [{"name": "u", "user": user if user is not None else {"token": "sekret"}}]}
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def kube_get(kc, *args, timeout=30):
    p = subprocess.run([KUBE_GET, "--kubeconfig", kc] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, p.stderr
    if SANITIZED:
        assert "Sanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
    return [json.loads(line) for line in p.stdout.splitlines()]


def ok(body=b'{"data":{"k":"v"}}', extra=b""):
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n"
            % (len(body), extra)) + body


def url(srv, host="127.0.0.1", scheme="https"):
    return "%s://%s:%d" % (scheme, host, srv.port)


@pytest.fixture
def serve():
    servers = []

    def make(answer, **kw):
        s = Server(answer, **kw)
        servers.append(s)
        return s
    yield make
    for s in servers:
        s.close()


# ---- requests and framing ----

def test_get_with_content_length_and_headers(pki, serve, tmp_path):
    srv = serve(lambda c, n, r: [ok()], pki=pki)
    kc = kubeconfig(tmp_path, url(srv) + "/base/", pki)
    (r,) = kube_get(kc, "--path", "/api/v1/namespaces/ns/configmaps/cm")
    assert (r["err"], r["status"], r["body"]) == ("OK", 200, '{"data":{"k":"v"}}'), r
    assert r["proto"] == "HTTP/1.1", r  # this server offers no HTTP/2
    req = srv.requests[0]
    assert req["method"] == "GET" and req["version"] == "HTTP/1.1"
    assert req["path"] == "/base/api/v1/namespaces/ns/configmaps/cm"
    h = req["headers"]
    assert h["host"] == "127.0.0.1:%d" % srv.port
    assert h["authorization"] == "Bearer sekret"
    assert h["accept"] == "application/json"
    assert h["user-agent"].startswith("flink-memory-webhook/")


def test_chunked_body_in_pieces(pki, serve, tmp_path):
    body = json.dumps({"data": {"k%d" % i: "v" * i for i in range(200)}}).encode()
    pieces = [body[i:i + 700] for i in range(0, len(body), 700)]
    steps = [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"]
    for i, p in enumerate(pieces):
        # Sizes in both cases, an extension on one, each chunk split over two writes.
        size = ("%x" % len(p)) if i % 2 else ("%X" % len(p))
        ext = ";name=value" if i == 1 else ""
        chunk = ("%s%s\r\n" % (size, ext)).encode() + p + b"\r\n"
        steps += [chunk[:5], 0.01, chunk[5:]]
    steps += [b"0\r\nX-Trailer: yes\r\n\r\n"]
    srv = serve(lambda c, n, r: steps, pki=pki)
    (r,) = kube_get(kubeconfig(tmp_path, url(srv), pki), "--repeat", 1)
    assert r["err"] == "OK" and r["body"] == body.decode(), (r["err"], r["msg"])


def test_keep_alive_connection_reused(pki, serve, tmp_path):
    srv = serve(lambda c, n, r: [ok()], pki=pki)
    rs = kube_get(kubeconfig(tmp_path, url(srv), pki), "--repeat", 5)
    assert [r["err"] for r in rs] == ["OK"] * 5
    assert srv.connections == 1 and len(srv.requests) == 5


def test_connection_closed_by_server_while_idle_is_retried(pki, serve, tmp_path):
    # The server answers as if keeping the connection, then closes it: the next request finds
    # it dead and is sent again on a new connection, unseen by the caller.
    srv = serve(lambda c, n, r: [ok(), 0.05, "close"], pki=pki)
    rs = kube_get(kubeconfig(tmp_path, url(srv), pki), "--repeat", 3, "--pause-ms", 200)
    assert [r["err"] for r in rs] == ["OK"] * 3, rs
    assert srv.connections == 3


def test_connection_close_and_http10(pki, serve, tmp_path):
    body = b'{"data":{}}'
    answers = {1: [ok(extra=b"Connection: close\r\n"), "close"],
               2: [b"HTTP/1.0 200 OK\r\n\r\n" + body, "close"],
               3: [b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body, 0.05, "close"]}
    srv = serve(lambda c, n, r: answers[c], pki=pki)
    rs = kube_get(kubeconfig(tmp_path, url(srv), pki), "--repeat", 3)
    assert [(r["err"], r["body"]) for r in rs][1:] == [("OK", body.decode())] * 2, rs
    assert rs[0]["err"] == "OK" and srv.connections == 3


def test_interim_answer_skipped_and_statuses_passed_on(pki, serve, tmp_path):
    answers = {1: [b"HTTP/1.1 100 Continue\r\n\r\n", ok()],
               2: [b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found"],
               3: [b"HTTP/1.1 204 No Content\r\n\r\n"]}
    srv = serve(lambda c, n, r: answers[n], pki=pki)
    rs = kube_get(kubeconfig(tmp_path, url(srv), pki), "--repeat", 3)
    assert [(r["err"], r["status"]) for r in rs] == [("OK", 200), ("OK", 404), ("OK", 204)], rs
    assert rs[1]["body"] == "not found" and srv.connections == 1


@pytest.mark.parametrize("answer, why", [
    ([b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 50, "close"], "cut short"),
    ([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabc", "close"], "cut short"),
    ([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0.2, "close"], "bad chunk"),
    ([b"SSH-2.0-OpenSSH\r\n\r\n", "close"], "not HTTP"),
    ([b"HTTP/1.1 2x0 OK\r\n\r\n", "close"], "bad status"),
    ([b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello", "close"],
     "two lengths"),
    ([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx", "close"], "unknown coding"),
    ([b"HTTP/1.1 200 OK\r\n" + b"X: " + b"y" * 70000 + b"\r\n\r\n", "close"], "huge head"),
    (["close"], "closed before answering"),
])
def test_malformed_answers_are_errors(pki, serve, tmp_path, answer, why):
    srv = serve(lambda c, n, r: answer, pki=pki)
    (r,) = kube_get(kubeconfig(tmp_path, url(srv), pki))
    assert r["err"] == "EIO", (why, r)
    assert "API server" in r["msg"], r


@pytest.mark.parametrize("answer", [
    [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", "close"],
    [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", "close"],
])
def test_codings_other_than_chunked_refused(pki, serve, tmp_path, answer):
    srv = serve(lambda c, n, r: answer, pki=pki)
    (r,) = kube_get(kubeconfig(tmp_path, url(srv), pki))
    assert r["err"] == "EIO", r


def test_endless_interim_answers_cut_off(pki, serve, tmp_path):
    # A server that answers 100 Continue for ever is cut off after a few, well before the
    # deadline, even though bytes never stop coming.
    srv = serve(lambda c, n, r: [b"HTTP/1.1 100 Continue\r\n\r\n" * 50000], pki=pki)
    (r,) = kube_get(kubeconfig(tmp_path, url(srv), pki), "--timeout-ms", 3000)
    assert r["err"] == "EIO" and r["ms"] < 2500, r


def test_endless_trailers_bounded(pki, serve, tmp_path):
    # Trailer fields without end after the last chunk: refused once past their cap, long before
    # the deadline.
    steps = [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n"]
    steps += [b"X-Trailer: " + b"t" * 100 + b"\r\n"] * 5000
    srv = serve(lambda c, n, r: steps, pki=pki)
    (r,) = kube_get(kubeconfig(tmp_path, url(srv), pki), "--timeout-ms", 2000)
    assert r["err"] == "EIO" and r["ms"] < 1500, r


def test_body_over_the_cap(pki, serve, tmp_path):
    srv = serve(lambda c, n, r: [ok(b"x" * 5000)], pki=pki)
    (r,) = kube_get(kubeconfig(tmp_path, url(srv), pki), "--max-body", 1000)
    assert r["err"] == "ETOOBIG" and "too large" in r["msg"], r


# ---- deadlines ----

def test_no_answer_times_out(pki, serve, tmp_path):
    srv = serve(lambda c, n, r: ["hang"], pki=pki)
    (r,) = kube_get(kubeconfig(tmp_path, url(srv), pki), "--timeout-ms", 300)
    assert r["err"] == "ETIMEDOUT", r
    assert 250 <= r["ms"] < 1500, r


def test_name_lookup_is_within_the_deadline(tmp_path):
    """A resolver that takes 3 s (tests/kube/slowdns.c, preloaded): the request gives up at its
    300 ms deadline, the lookup left to finish on its own thread (before: libcurl waited for the
    lookup, 3 s)."""
    lib = os.path.abspath(os.environ.get("KUBE_SLOWDNS", "build/tests/libslowdns.so"))
    kc = kubeconfig(tmp_path, "https://api.slow.test:6443", user={"token": "t"})
    t0 = time.time()
    p = subprocess.run([KUBE_GET, "--kubeconfig", kc, "--timeout-ms", "300"], capture_output=True,
                       text=True, timeout=30, env=dict(
                           os.environ, LD_PRELOAD=lib,
                           # a sanitized kube-get wants its runtime first; the shim only wraps
                           ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"))
    took = time.time() - t0
    assert p.returncode == 0, p.stderr
    (r,) = [json.loads(line) for line in p.stdout.splitlines()]
    assert r["err"] == "ETIMEDOUT" and r["ms"] < 1500, r
    assert took < 2.5, took  # the process does not wait for the lookup at exit either


def test_slow_trickle_times_out(pki, serve, tmp_path):
    # Bytes keep coming, but the whole answer is not there by the deadline.
    trickle = [b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"] + [b"x", 0.05] * 100
    srv = serve(lambda c, n, r: trickle, pki=pki)
    (r,) = kube_get(kubeconfig(tmp_path, url(srv), pki), "--timeout-ms", 400)
    assert r["err"] == "ETIMEDOUT" and r["ms"] < 1500, r


def test_handshake_never_answered_times_out(pki, serve, tmp_path):
    srv = serve(None, tls_handshake=False)
    (r,) = kube_get(kubeconfig(tmp_path, url(srv), pki), "--timeout-ms", 300)
    assert r["err"] == "ETIMEDOUT" and "handshake" in r["msg"], r
    assert r["ms"] < 1500, r


def test_tls_to_a_plain_server_says_why(tmp_path, pki):
    # An https:// URL for a server speaking plain HTTP: it answers the ClientHello with an HTTP
    # error, and the message carries OpenSSL's reason rather than "connection closed".
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)

    def answer():
        conn, _ = lsock.accept()
        conn.recv(4096)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        time.sleep(0.2)
        conn.close()
    t = threading.Thread(target=answer, daemon=True)
    t.start()
    (r,) = kube_get(kubeconfig(tmp_path, "https://127.0.0.1:%d" % lsock.getsockname()[1], pki))
    t.join(5)
    lsock.close()
    assert r["err"] == "EIO" and "handshake" in r["msg"] and "closed" not in r["msg"], r


def test_port_with_leading_zeros(pki, serve, tmp_path):
    # Through the name lookup too: "localhost:0PORT" is port PORT.
    srv = serve(lambda c, n, r: [ok()], pki=pki)
    (r,) = kube_get(kubeconfig(tmp_path, "https://localhost:00%d" % srv.port, pki))
    assert r["err"] == "OK", r


def test_refused_connection(pki, tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    (r,) = kube_get(kubeconfig(tmp_path, "https://127.0.0.1:%d" % port, pki))
    assert r["err"] == "EIO" and "cannot connect" in r["msg"] and "refused" in r["msg"], r


# ---- TLS ----

def test_unknown_ca_is_refused(pki, serve, tmp_path):
    srv = serve(lambda c, n, r: [ok()], pki=pki)
    kc = kubeconfig(tmp_path, url(srv), user={"token": "t"},
                    cluster_extra={"certificate-authority-data": b64(pki.other_ca)})
    (r,) = kube_get(kc)
    assert r["err"] == "EIO" and "certificate" in r["msg"], r
    assert srv.requests == []


def test_a_configured_ca_is_the_only_one_trusted(pki, serve, tmp_path):
    """A kubeconfig's (or the service account's) CA is the only one trusted: a server whose CA is
    among the system's is refused when another CA is configured. The system's CAs here are a
    private /etc/ssl/certs (bundle file and hashed directory) holding the test CA, mounted in a
    mount namespace of its own. Before: libcurl took the CA as the bundle file only and still
    searched the system's directory, so the server was accepted."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare for a private /etc/ssl/certs")
    srv = serve(lambda c, n, r: [ok()], pki=pki)
    certs = tmp_path / "certs"
    certs.mkdir()
    shutil.copy(pki.ca, certs / "ca-certificates.crt")
    shutil.copy(pki.ca, certs / "test-ca.pem")
    run(["openssl", "rehash", str(certs)])

    def get_with_private_system_cas(kc):
        script = 'mount --bind "$1" /etc/ssl/certs && exec "$2" --kubeconfig "$3"'
        p = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script,
                            "sh", str(certs), os.path.abspath(KUBE_GET), kc],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout.splitlines()[0])

    # No CA configured: the (private) system's are used, and they know this server.
    plain = tmp_path / "plain"
    plain.mkdir()
    r = get_with_private_system_cas(kubeconfig(plain, url(srv), user={"token": "t"}))
    assert r["err"] == "OK", r
    # Another CA configured: it alone is trusted.
    pinned = tmp_path / "pinned"
    pinned.mkdir()
    kc = kubeconfig(pinned, url(srv), user={"token": "t"},
                    cluster_extra={"certificate-authority-data": b64(pki.other_ca)})
    r = get_with_private_system_cas(kc)
    assert r["err"] == "EIO" and "certificate" in r["msg"], r


def test_no_ca_configured_uses_the_systems(pki, serve, tmp_path):
    # No certificate authority in the kubeconfig: the system's are loaded (at the first
    # connection), and they do not know the test CA.
    srv = serve(lambda c, n, r: [ok()], pki=pki)
    (r,) = kube_get(kubeconfig(tmp_path, url(srv)))
    # The bundle loaded (else: "no certificate authority given and none installed"), and the
    # handshake then refused the server's chain.
    assert r["err"] == "EIO" and "TLS handshake" in r["msg"] and "certificate" in r["msg"], r
    assert srv.requests == []


def test_name_mismatch_is_refused(pki, serve, tmp_path):
    srv = serve(lambda c, n, r: [ok()], pki=pki, cert=pki.wrong, key=pki.wrong_key)
    (r,) = kube_get(kubeconfig(tmp_path, url(srv), pki))
    assert r["err"] == "EIO" and "certificate" in r["msg"] and "host name" in r["msg"], r
    assert srv.requests == []


def test_insecure_skip_verify(pki, serve, tmp_path):
    srv = serve(lambda c, n, r: [ok()], pki=pki, cert=pki.wrong, key=pki.wrong_key)
    kc = kubeconfig(tmp_path, url(srv), cluster_extra={"insecure-skip-tls-verify": True})
    (r,) = kube_get(kc)
    assert r["err"] == "OK", r


def test_host_name_looked_up_and_verified(pki, serve, tmp_path):
    # "localhost" goes through the name lookup; the certificate's DNS name must match.
    srv = serve(lambda c, n, r: [ok()], pki=pki)
    (r,) = kube_get(kubeconfig(tmp_path, url(srv, host="localhost"), pki))
    assert r["err"] == "OK", r
    assert srv.requests[0]["headers"]["host"] == "localhost:%d" % srv.port


def test_ipv6_literal(pki, serve, tmp_path):
    try:
        srv = serve(lambda c, n, r: [ok()], pki=pki, family=socket.AF_INET6)
    except OSError:
        pytest.skip("no IPv6 loopback")
    (r,) = kube_get(kubeconfig(tmp_path, "https://[::1]:%d" % srv.port, pki))
    assert r["err"] == "OK", r
    assert srv.requests[0]["headers"]["host"] == "[::1]:%d" % srv.port


def test_client_certificate(pki, serve, tmp_path):
    srv = serve(lambda c, n, r: [ok()], pki=pki, client_ca=pki.ca)
    user = {"client-certificate-data": b64(pki.client), "client-key-data": b64(pki.client_key)}
    (r,) = kube_get(kubeconfig(tmp_path, url(srv), pki, user=user))
    assert r["err"] == "OK", r
    assert "authorization" not in srv.requests[0]["headers"]
    # Without one, the server ends the handshake.
    (r,) = kube_get(kubeconfig(tmp_path, url(srv), pki, user={}))
    assert r["err"] == "EIO", r


def test_client_certificate_files_and_token_file(pki, serve, tmp_path):
    srv = serve(lambda c, n, r: [ok()], pki=pki, client_ca=pki.ca)
    token = tmp_path / "token"
    token.write_text("from-file\n")
    user = {"client-certificate": pki.client, "client-key": pki.client_key,
            "tokenFile": str(token)}
    (r,) = kube_get(kubeconfig(tmp_path, url(srv), pki, user=user))
    assert r["err"] == "OK", r
    assert srv.requests[0]["headers"]["authorization"] == "Bearer from-file"


def test_plain_http(serve, tmp_path):
    srv = serve(lambda c, n, r: [ok()], tls=False)
    (r,) = kube_get(kubeconfig(tmp_path, url(srv, scheme="http")))
    assert r["err"] == "OK", r


# ---- configurations refused when the client is made ----

@pytest.mark.parametrize("server, extra, user, word", [
    ("https://127.0.0.1:1", {}, {"token": "a\r\nX-Injected: 1"}, "control characters"),
    ("ftp://127.0.0.1:1", {}, None, "https://"),
    ("https://127.0.0.1:99999", {}, None, "port"),
    ("https://[::1", {}, None, "["),
    ("https://user@host:443", {}, None, "host"),
    ("https://127.0.0.1:1", {"certificate-authority-data": base64.b64encode(b"junk").decode()},
     None, "certificate authority"),
    ("https://127.0.0.1:1", {}, {"client-certificate-data": base64.b64encode(b"junk").decode(),
                                 "client-key-data": base64.b64encode(b"junk").decode()},
     "client certificate"),
])
def test_bad_configuration_refused_at_start(pki, tmp_path, server, extra, user, word):
    cluster_extra = dict(extra)
    if "certificate-authority-data" not in cluster_extra:
        cluster_extra["certificate-authority-data"] = b64(pki.ca)
    (r,) = kube_get(kubeconfig(tmp_path, server, user=user, cluster_extra=cluster_extra))
    assert r.get("new_err") == "EINVAL" and word in r["msg"], r


# ---- the ConfigMap cache: no lookup answered by a read sent before it began ----

def lookups(kc, starts, *extra):
    return kube_get(kc, "--configmap", "ns/cm", "--starts-ms", ",".join(map(str, starts)), *extra)


def test_lookups_share_a_read_only_when_it_was_sent_after_they_began(pki, serve, tmp_path):
    # Lookup 0 sends read 1 at t=0, answered at 0.6 s. Lookups 1 and 2 begin while it is in flight
    # (0.2 s, 0.3 s): read 1 may hold data replaced since they began, so they wait for it to end
    # and then share read 2. Lookup 3 begins at 0.4 s too and shares read 2 as well.
    answers = iter(range(1, 100))
    srv = serve(lambda c, n, r: [0.6, ok(json.dumps({"data": {"n": str(next(answers))}}).encode())],
                pki=pki)
    rs = lookups(kubeconfig(tmp_path, url(srv), pki), [0, 200, 300, 400])
    assert [r["err"] for r in rs] == ["OK"] * 4, rs
    assert [r["data"]["n"] for r in rs] == ["1", "2", "2", "2"], rs
    assert len(srv.requests) == 2


def test_a_lookup_is_never_answered_by_a_read_sent_before_it_began():
    """tests/kube/cacherace.c: a lookup that began while an old read was in flight, and reached
    the cache only after the next read was sent, gets the next read's data (before: the old
    read's, since the entry's send time had moved on while its data had not)."""
    exe = os.environ.get("KUBE_CACHE_RACE", "build/tests/kube-cache-race")
    p = subprocess.run([exe], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert json.loads(p.stdout) == {"L0": "0", "W1": "1", "L2": "1", "reads": 2}, p.stdout


def test_a_ttl_lets_later_lookups_use_an_earlier_read(pki, serve, tmp_path):
    answers = iter(range(1, 100))
    srv = serve(lambda c, n, r: [0.3, ok(json.dumps({"data": {"n": str(next(answers))}}).encode())],
                pki=pki)
    rs = lookups(kubeconfig(tmp_path, url(srv), pki), [0, 100, 600], "--ttl-ms", 60000)
    assert [r["data"]["n"] for r in rs] == ["1", "1", "1"], rs
    assert len(srv.requests) == 1


def test_lookups_after_a_read_ended_send_their_own(pki, serve, tmp_path):
    answers = iter(range(1, 100))
    srv = serve(lambda c, n, r: [ok(json.dumps({"data": {"n": str(next(answers))}}).encode())],
                pki=pki)
    rs = lookups(kubeconfig(tmp_path, url(srv), pki), [0, 300, 600])
    assert [r["data"]["n"] for r in rs] == ["1", "2", "3"], rs


def test_a_failed_read_is_not_replaced_by_an_older_copy(pki, serve, tmp_path):
    # Read 1 succeeds; read 2 (0.3 s later) gets a 500: that lookup fails with the reason rather
    # than being answered with read 1's data.
    statuses = iter([b"200 OK", b"500 Internal Server Error"])
    srv = serve(lambda c, n, r: [(b"HTTP/1.1 %s\r\nContent-Length: 18\r\n\r\n" % next(statuses))
                                 + b'{"data":{"n":"1"}}'], pki=pki)
    rs = lookups(kubeconfig(tmp_path, url(srv), pki), [0, 300])
    assert rs[0]["err"] == "OK" and rs[0]["data"] == {"n": "1"}, rs
    assert rs[1]["err"] == "EIO" and "HTTP 500" in rs[1]["msg"] and rs[1]["data"] is None, rs
