"""Helpers shared by the hostile-input and fault suites (tests/hostile, tests/faults).

- certs(): a CA and a 127.0.0.1 serving certificate made with the openssl CLI;
- StubAPI: a tiny loopback Kubernetes API (plain HTTP) serving ConfigMaps from a dict, used
  where the suite is about the webhook and not the API server;
- Webhook: the real flink-memory-webhook process (module global WEBHOOK, which `make asan`
  swaps for the sanitized build), its stderr kept, sanitizer reports checked at stop;
- raw TLS exchanges and a small HTTP/1.1 response parser, since hostile requests are exactly
  what ordinary HTTP clients refuse to send;
- AdmissionReview builders.
Everything listens and connects on 127.0.0.1 only.
"""
import base64
import http.server
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WEBHOOK = os.path.join(ROOT, "build", "bin", "flink-memory-webhook")
SANITIZER_RE = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY: \w+Sanitizer")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def certs(d, name="tls", ca=None):
    """A CA (made once per directory) and a serving certificate for 127.0.0.1 signed by it."""
    def run(*a):
        subprocess.run(a, check=True, capture_output=True, cwd=d)
    if not os.path.exists(os.path.join(d, "ca.crt")):
        run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-days", "2", "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=fmw-ca")
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", "/CN=127.0.0.1")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    run("openssl", "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-out", f"{name}.crt", "-extfile", "ext.cnf")
    return os.path.join(d, f"{name}.crt"), os.path.join(d, f"{name}.key")


class StubAPI:
    """GET /api/v1/namespaces/NS/configmaps/NAME from self.configmaps[(ns, name)] (a dict of
    data), else a 404 Status. self.delay seconds before each answer; self.requests counts."""

    def __init__(self):
        self.configmaps = {}
        self.delay = 0.0
        self.requests = 0
        self.paths = []
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                stub.requests += 1
                stub.paths.append(self.path)
                if stub.delay:
                    time.sleep(stub.delay)
                m = re.match(r"^/api/v1/namespaces/([^/]+)/configmaps/([^/?]+)", self.path)
                data = stub.configmaps.get((m.group(1), m.group(2))) if m else None
                if data is None:
                    body = json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                       "reason": "NotFound", "code": 404}).encode()
                    code = 404
                else:
                    # As a real API server answers: every data key again in managedFields.
                    managed = [{"manager": "kubectl", "operation": "Apply", "apiVersion": "v1",
                                "fieldsType": "FieldsV1",
                                "fieldsV1": {"f:data": {f"f:{k}": {} for k in data}}}]
                    body = json.dumps({"kind": "ConfigMap", "apiVersion": "v1",
                                       "metadata": {"name": m.group(2), "namespace": m.group(1),
                                                    "resourceVersion": "1",
                                                    "managedFields": managed},
                                       "data": data}).encode()
                    code = 200
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def kubeconfig(self, path):
        with open(path, "w") as f:
            json.dump({"apiVersion": "v1", "kind": "Config", "current-context": "stub",
                       "clusters": [{"name": "stub", "cluster": {
                           "server": f"http://127.0.0.1:{self.port}"}}],
                       "contexts": [{"name": "stub", "context": {"cluster": "stub",
                                                                 "user": "stub"}}],
                       "users": [{"name": "stub", "user": {"token": "not-a-secret"}}]}, f)
        return path

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Webhook:
    """The daemon on 127.0.0.1 with the given kubeconfig and extra flags."""

    def __init__(self, d, kubeconfig, *extra, cert=None, key=None):
        self.dir = d
        self.cert = cert or os.path.join(d, "tls.crt")
        self.key = key or os.path.join(d, "tls.key")
        self.kubeconfig = kubeconfig
        self.extra = list(extra)
        self.port = free_port()
        self.health_port = free_port()
        self.proc = None
        self.log_path = os.path.join(d, f"webhook-{self.port}.log")

    def start(self, wait=True):
        env = dict(os.environ)
        # Sanitized builds: keep reports in the log, count them, never abort silently.
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [WEBHOOK, "--tls-cert-file", self.cert, "--tls-key-file", self.key,
             "--kubeconfig", self.kubeconfig, "--listen-address", "127.0.0.1",
             "--port", str(self.port), "--health-port", str(self.health_port),
             "--drain-delay-ms", "0"] + self.extra,
            stdout=subprocess.DEVNULL, stderr=self.log, env=env)
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"webhook exited ({self.proc.returncode}): {self.stderr()}")
            try:
                if health(self.health_port, "/readyz") == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("webhook did not become ready: " + self.stderr()[-2000:])

    def stderr(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def _status_kib(self, field):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return 0

    def rss_kib(self):
        return self._status_kib("VmRSS")

    def peak_kib(self):
        """The process's peak resident size so far."""
        return self._status_kib("VmHWM")

    def open_fds(self):
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def stop(self, timeout=30):
        """SIGTERM; the exit status must be 0 and the log free of sanitizer reports."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("webhook did not exit after SIGTERM")
            assert rc == 0, f"webhook exit status {rc}: {self.stderr()[-3000:]}"
        self.log.close()
        self.check_sanitizers()

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def check_sanitizers(self):
        text = self.stderr()
        if SANITIZER_RE.search(text):
            raise AssertionError("sanitizer report:\n" + text[-6000:])


def health(port, path="/healthz", timeout=5):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
    return int(m.group(1)) if m else 0


def client_ctx(minv=ssl.TLSVersion.TLSv1_2, maxv=None, ciphers=None, alpn=("http/1.1",)):
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    c.minimum_version = minv
    if maxv:
        c.maximum_version = maxv
    if ciphers:
        c.set_ciphers(ciphers)
    if alpn:
        c.set_alpn_protocols(list(alpn))
    return c


def tls_connect(port, timeout=10, **kw):
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        return client_ctx(**kw).wrap_socket(raw, server_hostname="localhost")
    except BaseException:
        raw.close()
        raise


class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<{self.status} {self.body[:200]!r}>"


def parse_responses(data, final=False):
    """Every complete HTTP/1.1 response in `data` (Content-Length or chunked framing; a response
    without either ends at the close, so it counts only when `final`)."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.split(b"\r\n")
        m = re.match(rb"HTTP/1\.[01] (\d{3})", lines[0])
        if not m:
            break
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            headers[k.strip().lower().decode(errors="replace")] = v.strip().decode(errors="replace")
        status = int(m.group(1))
        if "content-length" in headers:
            n = int(headers["content-length"])
            if len(rest) < n:
                break
            body, data = rest[:n], rest[n:]
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            complete = False
            while True:
                size_line, nl, after = rest.partition(b"\r\n")
                if not nl:
                    break
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    rest = after.partition(b"\r\n")[2]
                    complete = True
                    break
                if len(after) < size + 2:
                    break
                body += after[:size]
                rest = after[size + 2:]
            if not complete:
                break
            data = rest
        elif status in (100, 204, 304):
            body, data = b"", rest
        elif final:
            body, data = rest, b""
        else:
            break
        out.append(Response(status, headers, body))
    return out


class TLSConn:
    """A TLS client over a plain socket and memory BIOs, so that it can send close_notify and
    keep reading (a half-close), and survive a peer that closes while we still write."""

    def __init__(self, port, timeout=10, **kw):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = client_ctx(**kw).wrap_bio(self.inc, self.out, server_hostname="localhost")
        try:
            while True:
                try:
                    self.obj.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    self._flush()
                    chunk = self.sock.recv(65536)
                    if not chunk:
                        raise ConnectionResetError("closed during the handshake")
                    self.inc.write(chunk)
            self._flush()
        except BaseException:
            self.sock.close()
            raise

    def _flush(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)

    def send(self, data):
        """Returns False when the peer closed before everything was sent."""
        try:
            for i in range(0, len(data), 1 << 16):
                self.obj.write(data[i:i + (1 << 16)])
                self._flush()
            return True
        except (OSError, ssl.SSLError):
            return False

    def close_notify(self):
        try:
            self.obj.unwrap()
        except (ssl.SSLWantReadError, ssl.SSLError):
            pass
        try:
            self._flush()
        except OSError:
            pass

    def recv(self, timeout):
        """Application data, b"" at the peer's close, None on timeout."""
        while True:
            try:
                return self.obj.read(1 << 20)
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLZeroReturnError:
                return b""
            except ssl.SSLError:
                return b""
            self.sock.settimeout(timeout)
            try:
                chunk = self.sock.recv(1 << 20)
            except (socket.timeout, TimeoutError):
                return None
            except OSError:
                return b""
            if not chunk:
                self.inc.write_eof()
                try:
                    return self.obj.read(1 << 20)
                except ssl.SSLError:
                    return b""
            self.inc.write(chunk)

    def close(self):
        self.sock.close()


def exchange(port, raw, timeout=10, half_close=False, want=1, **kw):
    """Sends `raw` over a new TLS connection and reads until the server closes, `want`
    responses have arrived (unless half_close), or `timeout`. Returns (responses, closed)."""
    c = TLSConn(port, timeout=timeout, **kw)
    data = b""
    closed = False
    try:
        c.send(raw)
        if half_close:
            c.close_notify()
        deadline = time.time() + timeout
        while time.time() < deadline:
            chunk = c.recv(max(0.05, deadline - time.time()))
            if chunk is None:
                break
            if not chunk:
                closed = True
                break
            data += chunk
            if not half_close and len(parse_responses(data)) >= want:
                break
    finally:
        c.close()
    return parse_responses(data, final=closed), closed


def post_raw(body, path="/mutate", ctype="application/json", extra=b""):
    if isinstance(body, str):
        body = body.encode()
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\n").encode() + extra + b"\r\n" + body


def review(obj, operation="CREATE", ns="flink", kind=None, group=""):
    kind = kind or obj.get("kind", "Pod") if isinstance(obj, dict) else kind or "Pod"
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": str(uuid.uuid4()),
                        "kind": {"group": group, "version": "v1", "kind": kind},
                        "resource": {"group": group, "version": "v1", "resource": "pods"},
                        "namespace": ns, "operation": operation, "object": obj,
                        "dryRun": False}}


def jm_pod(env=None, args=("jobmanager",), image="flink:1.20.0", configmap=None, memory="2Gi",
           name="jobmanager", annotations=None, command=None):
    c = {"name": name, "image": image, "args": list(args),
         "resources": {"limits": {"memory": memory}}}
    if command is not None:
        c["command"] = command
    if env is not None:
        c["env"] = env
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"generateName": "flink-jobmanager-", "labels": {"component": "jobmanager"},
                        "annotations": annotations or {}},
           "spec": {"containers": [c]}}
    if configmap:
        c["volumeMounts"] = [{"name": "conf", "mountPath": "/opt/flink/conf"}]
        pod["spec"]["volumes"] = [{"name": "conf", "configMap": {"name": configmap}}]
    return pod


def props_pod(text, **kw):
    return jm_pod(env=[{"name": "FLINK_PROPERTIES", "value": text}], **kw)


def check_review_answer(resp, uid=None):
    """A valid AdmissionReview response; returns its "response" object."""
    assert resp.status == 200, resp
    doc = resp.json()
    assert doc.get("apiVersion") in ("admission.k8s.io/v1", "admission.k8s.io/v1beta1"), doc
    assert doc.get("kind") == "AdmissionReview", doc
    r = doc["response"]
    assert isinstance(r.get("allowed"), bool), doc
    if uid:
        assert r["uid"] == uid
    if "patch" in r:
        assert r["patchType"] == "JSONPatch"
        ops = json.loads(base64.b64decode(r["patch"]))
        assert isinstance(ops, list) and ops
    for w in r.get("warnings", []):
        assert len(w.encode()) <= 256, w
    return r


GOOD_CONF = {"flink-conf.yaml": "jobmanager.memory.process.size: 1600m\n"}


def fresh_webhook(prefix, *extra):
    """A generator for fixtures: a webhook of its own (flags as given, else the defaults the chart
    keeps) whose stub API (wh.stub) serves ConfigMap flink/good; stopped, and checked for
    sanitizer reports, after the test."""
    d = tempfile.mkdtemp(prefix=prefix)
    certs(d)
    api = StubAPI()
    api.configmaps[("flink", "good")] = GOOD_CONF
    wh = Webhook(d, api.kubeconfig(os.path.join(d, "kubeconfig")), *extra)
    wh.start()
    wh.stub = api
    try:
        yield wh
    finally:
        try:
            wh.stop()
        finally:
            api.close()
            shutil.rmtree(d, ignore_errors=True)


def assert_good_review(wh):
    """A good review on a new connection gets its patch: the webhook goes on serving."""
    good = review(jm_pod(configmap="good"))
    rs, _ = exchange(wh.port, post_raw(json.dumps(good)))
    assert rs, "no answer to a good review: " + wh.stderr()[-2000:]
    r = check_review_answer(rs[0], good["request"]["uid"])
    assert r["allowed"] and "patch" in r, r
