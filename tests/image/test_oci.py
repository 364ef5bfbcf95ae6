"""The webhook's OCI image, built without a container engine (`make image`, image/image.sh).

What a user gets from `make image` and `make image-push`: a valid OCI image (checked with crane,
the tool that pushes it), the config the chart runs (user 65532, the binary as entrypoint, OCI
labels), a digest that two builds agree on, a push to a registry served on 127.0.0.1 and a pull
back by digest whose unpacked layer runs the webhook (image/test-rootfs.sh: chroot, read-only,
uid 65532). image/Dockerfile must describe the same image.

Runs after `make image` (the make target image-oci depends on it); needs root for the rootfs run.
"""
import hashlib
import io
import json
import os
import re
import shlex
import socket
import subprocess
import tarfile
import time

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "build", "image")
LAYOUT = os.path.join(OUT, "oci")
ARCHIVE = os.path.join(OUT, "flink-memory-webhook.oci.tar")
ROOTFS = os.path.join(OUT, "rootfs")
CRANE = os.path.join(OUT, "tools", "crane")
CHART = os.path.join(ROOT, "charts", "flink-memory-webhook")
ENTRYPOINT = "/usr/local/bin/flink-memory-webhook"


def run(*args, check=True, timeout=600, env=None, **kw):
    p = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                       env={**os.environ, **(env or {})}, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{shlex.join(args)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p


def crane(*args, **kw):
    return run(CRANE, *args, **kw)


def digest_file():
    with open(os.path.join(OUT, "digest")) as f:
        return f.read().strip()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def blob(digest):
    with open(os.path.join(LAYOUT, "blobs", *digest.split(":", 1)), "rb") as f:
        return f.read()


def chart_version():
    with open(os.path.join(CHART, "Chart.yaml")) as f:
        return yaml.safe_load(f)["appVersion"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """An OCI registry on 127.0.0.1 (crane registry serve, blobs on disk), for this module."""
    port = free_port()
    disk = tmp_path_factory.mktemp("registry")
    log = open(disk / "registry.log", "w")
    proc = subprocess.Popen([CRANE, "registry", "serve", "--address", f"127.0.0.1:{port}", "--disk", str(disk)],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"crane registry serve did not start:\n{(disk / 'registry.log').read_text()}")
                time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def pushed(registry):
    """The image as `make image-push` sends it: (tagged reference, reference by digest)."""
    tagged = f"{registry}/flink-memory-webhook:{chart_version()}"
    p = run("make", "--no-print-directory", "image-push", f"IMAGE={tagged}")
    m = re.search(r"^image: pushed (\S+@sha256:[0-9a-f]{64})$", p.stdout + p.stderr, re.M)
    assert m, f"make image-push did not say what it pushed:\n{p.stdout}\n{p.stderr}"
    return tagged, m.group(1)


def test_layout_is_an_oci_image():
    with open(os.path.join(LAYOUT, "oci-layout")) as f:
        assert json.load(f) == {"imageLayoutVersion": "1.0.0"}
    with open(os.path.join(LAYOUT, "index.json")) as f:
        index = json.load(f)
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    [entry] = index["manifests"]
    assert entry["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert entry["digest"] == digest_file()
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == chart_version()
    manifest = json.loads(blob(entry["digest"]))
    assert manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    [layer] = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    # Every blob is stored under its own digest, with the size its descriptor gives.
    for desc in [entry, manifest["config"], layer]:
        data = blob(desc["digest"])
        assert len(data) == desc["size"]
        assert "sha256:" + hashlib.sha256(data).hexdigest() == desc["digest"]


def test_archive_holds_the_layout():
    with tarfile.open(ARCHIVE) as t:
        names = {m.name.rstrip("/") for m in t.getmembers()}
        for name in ["oci-layout", "index.json"]:
            assert t.extractfile(name).read() == open(os.path.join(LAYOUT, name), "rb").read()
    on_disk = {os.path.relpath(os.path.join(d, n), LAYOUT)
               for d, dirs, files in os.walk(LAYOUT) for n in dirs + files}
    assert names == on_disk


def test_layer_is_the_rootfs():
    """The layer holds exactly the files image/rootfs.sh assembled, with their modes, owned by root."""
    manifest = json.loads(blob(digest_file()))
    with tarfile.open(fileobj=io.BytesIO(blob(manifest["layers"][0]["digest"])), mode="r:gz") as t:
        members = {m.name.rstrip("/"): m for m in t.getmembers()}
    expected = {}
    for d, dirs, files in os.walk(ROOTFS):
        for n in dirs + files:
            p = os.path.join(d, n)
            expected[os.path.relpath(p, ROOTFS)] = os.lstat(p)
    assert sorted(members) == sorted(expected)
    for name, st in expected.items():
        m = members[name]
        assert (m.uid, m.gid) == (0, 0), name
        if os.path.islink(os.path.join(ROOTFS, name)):
            assert m.issym() and m.linkname == os.readlink(os.path.join(ROOTFS, name)), name
        else:
            assert m.mode == st.st_mode & 0o7777, name
            if m.isfile():
                assert m.size == st.st_size, name
    assert members["tmp"].mode == 0o1777
    assert members[ENTRYPOINT.lstrip("/")].mode & 0o111


def test_config_is_what_the_chart_runs():
    config = json.loads(blob(json.loads(blob(digest_file()))["config"]["digest"]))
    assert (config["os"], config["architecture"]) == ("linux", "amd64")
    c = config["config"]
    assert c["User"] == "65532:65532"
    assert c["Entrypoint"] == [ENTRYPOINT]
    assert not c.get("Cmd"), "the chart passes only args: a default Cmd would be replaced anyway"
    assert sorted(c["ExposedPorts"]) == ["8080/tcp", "8443/tcp"]
    labels = c["Labels"]
    assert labels["org.opencontainers.image.version"] == chart_version()
    head = run("git", "rev-parse", "HEAD").stdout.strip()
    dirty = run("git", "status", "--porcelain", "--untracked-files=no").stdout.strip()
    assert labels["org.opencontainers.image.revision"] == head + ("-dirty" if dirty else "")
    # The chart's container sets no command, so this entrypoint is what runs; and its default
    # image is this name at the chart's appVersion.
    with open(os.path.join(CHART, "templates", "deployment.yaml")) as f:
        assert not re.search(r"^\s*command:", f.read(), re.M)
    with open(os.path.join(CHART, "values.yaml")) as f:
        assert yaml.safe_load(f)["image"]["repository"] == "flink-memory-webhook"


def test_source_label_and_created_time(tmp_path):
    out = tmp_path / "out"
    run("image/image.sh", "build", ROOTFS, str(out),
        env={"VERSION": "9.9.9", "IMAGE_SOURCE": "https://example.invalid/flink-memory-webhook",
             "SOURCE_DATE_EPOCH": "86400"})
    with open(out / "oci" / "index.json") as f:
        entry = json.load(f)["manifests"][0]
    blobs = out / "oci" / "blobs" / "sha256"
    config = json.loads((blobs / json.loads((blobs / entry["digest"][7:]).read_text())["config"]["digest"][7:]).read_text())
    assert config["config"]["Labels"]["org.opencontainers.image.source"] == "https://example.invalid/flink-memory-webhook"
    assert config["config"]["Labels"]["org.opencontainers.image.version"] == "9.9.9"
    assert config["created"] == "1970-01-02T00:00:00Z"
    assert (out / "digest").read_text().strip() == entry["digest"] != digest_file()


def test_two_builds_give_the_same_digest():
    """Everything rebuilt that can be: the binary relinked, the rootfs and the image assembled anew."""
    first, first_archive = digest_file(), sha256_file(ARCHIVE)
    os.remove(os.path.join(ROOT, "build", "bin", "flink-memory-webhook"))
    for p in [ROOTFS, LAYOUT]:
        run("rm", "-rf", p)
    os.remove(ARCHIVE)
    run("make", "--no-print-directory", "image")
    assert digest_file() == first
    assert sha256_file(ARCHIVE) == first_archive


def test_push_and_validate(pushed):
    tagged, by_digest = pushed
    assert by_digest.endswith("@" + digest_file())
    assert crane("digest", tagged).stdout.strip() == digest_file()
    p = crane("validate", "--remote", by_digest)
    assert "PASS" in p.stdout + p.stderr
    manifest = json.loads(crane("manifest", by_digest).stdout)
    assert manifest == json.loads(blob(digest_file()))
    config = json.loads(crane("config", by_digest).stdout)
    assert config["config"]["User"] == "65532:65532"


def test_pull_by_digest_and_run(pushed, tmp_path):
    """Pulled back by digest, the image's layer unpacks to a root filesystem the webhook runs from."""
    _, by_digest = pushed
    pulled = tmp_path / "pulled"
    crane("pull", "--format", "oci", by_digest, str(pulled))
    with open(pulled / "index.json") as f:
        assert [m["digest"] for m in json.load(f)["manifests"]] == [digest_file()]
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    export = subprocess.Popen([CRANE, "export", by_digest, "-"], stdout=subprocess.PIPE)
    run("tar", "-x", "-p", "--numeric-owner", "-C", str(rootfs), stdin=export.stdout)
    export.stdout.close()
    assert export.wait(timeout=60) == 0
    p = run("image/test-rootfs.sh", str(rootfs), check=False, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert re.search(r"^\d+ passed, 0 failed$", p.stdout, re.M), p.stdout


def test_push_errors_are_one_line():
    p = run("make", "--no-print-directory", "image-push", check=False, env={"IMAGE": ""})
    assert p.returncode != 0
    lines = [line for line in (p.stdout + p.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and "IMAGE=REGISTRY/NAME:TAG" in lines[0], lines
    # Nothing listens on port 1: the push is refused, and says so in its own line.
    p = run("make", "--no-print-directory", "image-push", "IMAGE=127.0.0.1:1/flink-memory-webhook:x",
            check=False, timeout=180)
    assert p.returncode != 0
    errors = [line for line in p.stderr.splitlines() if line.startswith("image: could not push")]
    assert len(errors) == 1 and "127.0.0.1:1/flink-memory-webhook:x" in errors[0] and "refused" in errors[0], p.stderr


def dockerfile_stages(path):
    """The Dockerfile's stages as lists of (INSTRUCTION, arguments), continuations joined."""
    with open(path) as f:
        text = re.sub(r"\\\n", " ", f.read())
    stages = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((word.upper(), rest.strip()))
    return stages


def test_dockerfile_describes_the_same_image():
    """Not run (no engine here): read, and compared with what make image assembles."""
    stages = dockerfile_stages(os.path.join(ROOT, "image", "Dockerfile"))
    build, final = stages[0], stages[-1]
    # The same file list: the build stage runs the same rootfs.sh on the same binary, and the
    # final stage is that directory alone.
    runs = " ".join(arg for ins, arg in build if ins == "RUN")
    assert "image/rootfs.sh build/bin/flink-memory-webhook /rootfs" in runs
    assert final[0] == ("FROM", "scratch")
    assert [arg for ins, arg in final if ins in ("COPY", "ADD")] == ["--from=build /rootfs/ /"]
    config = json.loads(blob(json.loads(blob(digest_file()))["config"]["digest"]))["config"]
    get = {ins: arg for ins, arg in final}
    assert get["USER"] == config["User"]
    assert json.loads(get["ENTRYPOINT"]) == config["Entrypoint"]
    assert "CMD" not in get
    assert sorted(f"{p}/tcp" for p in get["EXPOSE"].split()) == sorted(config["ExposedPorts"])
    assert ["PATH=" + get["ENV"].split("=", 1)[1]] == config["Env"]
    labels = dict(re.findall(r'(\S+?)="([^"]*)"', get["LABEL"]))
    assert set(labels) == set(config["Labels"]) | {"org.opencontainers.image.source"}
    assert labels["org.opencontainers.image.title"] == config["Labels"]["org.opencontainers.image.title"]
    args = dict(arg.split("=", 1) for ins, arg in final if ins == "ARG")
    assert args["VERSION"] == chart_version()
