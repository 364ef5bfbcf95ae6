"""Cases that start for real: the admission corpus's patched JobManager and TaskManager pods,
started with Flink's real release scripts, and the JVM's flags compared with what the webhook
wrote.

For each case of tests/data/admission/cases.yaml, the pod is reviewed and patched exactly as
tests/admission/test_admission.py does (its own functions: API server defaults, `flink-memory
review`, the JSON Patch applied with jsonpatch). A case whose pod gets a patch with the
flink-memory-webhook/resolved annotation is then started the way the kubelet and the official
image would start it, without a container engine: in new mount, UTS and PID namespaces
(sandbox.py), on a root with Flink's bin/, conf/, lib/, plugins/ of the case's own Flink release
from PyPI at /opt/flink (fetch-flink.sh), the pod's ConfigMaps written at their mount paths as the
kubelet writes them (items, subPath, projected sources, read-only), the environment as Kubernetes
expands it (kubelet.py), init containers run first, the image's ENTRYPOINT modelled by
image/flink/docker-entrypoint.sh, and the command and args of the container the webhook sized
(the annotation's role says which: a JobManager or a TaskManager). Flink's scripts run for real,
BashJavaUtils included (GET_JM_RESOURCE_PARAMS under jobmanager.sh, GET_TM_RESOURCE_PARAMS under
taskmanager.sh; kubernetes-taskmanager.sh takes FLINK_TM_JVM_MEM_OPTS instead); the java that
would run the main class (a cluster entrypoint, TaskManagerRunner or
KubernetesTaskExecutorRunner) runs instead with the same options and -XX:+PrintFlagsFinal
-version (java-wrapper.sh). Before that, what that main does first runs for real with the
release's own classes (ParseArgs.java, compiled with the JDK's javac into the cache, outside the
repository): Flink's CommandLineParser with the main class's parser factory over its program
arguments, then the configuration loaded as main loads it (GlobalConfiguration over --configDir
and the -D properties, or FLINK_CONF_DIR for the Kubernetes entrypoints), and for a TaskManager
the environment its Kubernetes runner requires and the resource spec TaskManagerRunner makes
first at start (TaskExecutorResourceUtils.resourceSpecFromConfig). A pod whose JobManager or
TaskManager would end there, as with "Missing required option: c" when a java command names no
--configDir, or a TaskManager configuration without its fine-grained sizes, cannot start, and is
reported with Flink's message. It stops before the application entrypoints look for the job's jar
and class (the releases here have none), and before a TaskManager looks for its JobManager.

Compared per case: the annotation's jvmArgs with the flags its components make (a JobManager's
-Xmx/-Xms heap, -XX:MaxMetaspaceSize metaspace, -XX:MaxDirectMemorySize offHeap when Flink sets it;
a TaskManager's -Xmx/-Xms frameworkHeap + taskHeap, -XX:MaxDirectMemorySize frameworkOffHeap +
taskOffHeap + network, -XX:MaxMetaspaceSize metaspace); then, from PrintFlagsFinal, MaxHeapSize
(and InitialHeapSize, when the jvmArgs have -Xms), MaxMetaspaceSize and MaxDirectMemorySize (when
the jvmArgs carry it) with those numbers, "with" meaning: equal to what the same JDK shows when
started with exactly those flags, so the JVM's own rounding of the heap counts on both sides. The
container's memory limit and request after the patch with the annotation's limit and request,
and the limit with totalProcess unless the annotation says why it is higher (kept headroom, a
limit factor). Where Flink's scripts (or, in native mode, Flink's resource manager) pass the
resolved sizes to the main class (-D jobmanager.memory.* or -D taskmanager.memory.*=<bytes>b),
each of them with the annotation's component, and their sum with totalProcess. And for a
TaskManager, the sizes it runs with (its resource spec's task heap and off-heap, network and
managed memory, and the framework heap and off-heap of its configuration) with the annotation's.

A case that cannot start (a shell without an option, a missing program, a script error, an
argument, conf dir or configuration Flink's main rejects) is a finding about the case: it is
reported with the reason and its output's tail. Cases known to be such findings are listed in
KNOWN_FINDINGS with the realistic form of the pod and reported as expected failures (strict: one
that starts again, or fails for another reason, must be taken off the list). The corpus is not
edited here.

What this does not do: cgroups (the JVM runs in this machine's cgroup, not one with the pod's
limit; every JVM here has explicit heap and metaspace flags, so its ergonomics do not depend on
it), the flink user (root throughout), the image's Java (the JDK of this machine, 17, for every
line; the images run 8, 11, 17 or 21), the Scala variant (1.11's PyPI jars are Scala 2.11),
Secrets (not in the corpus: taken as empty), Bitnami's image (its own layout and scripts: its
JobManager and TaskManager cases are skipped).
"""
import base64
import concurrent.futures
import copy
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import jsonpatch
import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import kubelet  # noqa: E402

_spec = importlib.util.spec_from_file_location(
    "admission_harness", os.path.join(ROOT, "tests", "admission", "test_admission.py"))
harness = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(harness)

FETCH = os.path.join(HERE, "fetch-flink.sh")
SANDBOX = os.path.join(HERE, "sandbox.py")
ENTRYPOINT = os.path.join(HERE, "..", "..", "image", "flink", "docker-entrypoint.sh")
JAVA_WRAPPER = os.path.join(HERE, "java-wrapper.sh")
PARSE_ARGS = os.path.join(HERE, "ParseArgs.java")
CACHE = os.environ.get("FLINK_REAL_CACHE") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "flink-memory-webhook", "pyflink")
TIMEOUT = 180
WORKERS = int(os.environ.get("REAL_START_JOBS", "2"))
ONLY = [s for s in os.environ.get("REAL_START_CASES", "").split(",") if s]

CASES = harness.CASES
RESOLVED = harness.RESOLVED

# Cases whose pods cannot start for real: {name: (a part of the reason the report gives, what
# happens and what a realistic pod writes instead)}. Reported as expected failures, strictly: one
# that starts, or fails for another reason, fails the test, and its entry must go. The corpus is
# not edited here. (jobmanager-sh-Dk=v-is-taken-as-host, found here earlier, is denied by the
# webhook with Flink's parse error since; the native 1.18 TaskManager cases, found here without
# _POD_NODE_ID, which KubernetesTaskExecutorRunner requires from 1.16, carry it since.)
KNOWN_FINDINGS = {
    # The case's command is a script the image does not hold: it stands for a start command the
    # webhook does not model, and is reviewed, never started.
    "from-limit-with-an-unmodelled-start-command-is-sized-from-the-configuration":
        ("the container exited 127", "/opt/start.sh is not in Flink's image"),
}


_capman = None
_log_lock = threading.Lock()


def say(text):
    """Writes to the terminal past pytest's capture: progress while the pods start, the report."""
    with _log_lock:
        if _capman is not None:
            with _capman.global_and_fixture_disabled():
                sys.stderr.write(text)
                sys.stderr.flush()
        else:
            sys.stderr.write(text)
            sys.stderr.flush()


def log(msg):
    say("real-start: " + msg + "\n")


def real_java():
    java = os.environ.get("FLINK_REAL_JAVA") or shutil.which("java")
    if not java:
        pytest.fail("no java on PATH (FLINK_REAL_JAVA names one)")
    java = os.path.realpath(java)
    if not java.startswith("/usr/"):
        pytest.fail("the JDK must be under /usr to be seen in the sandbox's root: %s" % java)
    return java


def parse_args_classes(java):
    """ParseArgs.java compiled with the JDK's own javac, once per source and JDK, into the cache
    (outside the repository): the directory of its class files."""
    javac = os.path.join(os.path.dirname(java), "javac")
    if not os.access(javac, os.X_OK):
        pytest.fail("no javac next to %s (a JDK, not a JRE, is needed: tests/real/deps.sh)" % java)
    with open(PARSE_ARGS, "rb") as f:
        key = hashlib.sha256(f.read() + java.encode()).hexdigest()[:16]
    out = os.path.join(CACHE, "parse-args", key)
    if os.path.isfile(os.path.join(out, "ParseArgs.class")):
        return out
    os.makedirs(os.path.dirname(out), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="build-", dir=os.path.dirname(out))
    p = subprocess.run([javac, "-d", tmp, PARSE_ARGS], capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        pytest.fail("javac ParseArgs.java failed:\n" + p.stdout + p.stderr)
    try:
        os.rename(tmp, out)
    except OSError:  # another run put it there first
        shutil.rmtree(tmp, ignore_errors=True)
    return out


# ---------------------------------------------------------------- the patched pods

def patched_pod(case, configmaps_file):
    """The case's object through `flink-memory review` and its JSON Patch, as the harness does:
    (pod or pod template after the patch, annotation dict) or (None, reason)."""
    obj = case["object"]
    obj = harness.api_server_defaults(obj, "flink") if obj["kind"] == "Pod" else copy.deepcopy(obj)
    review = harness.review_of(obj, case.get("operation", "CREATE"))
    answer = json.loads(harness.run_review(review, configmaps_file, case.get("flags", [])))
    resp = answer["response"]
    if not resp.get("allowed"):
        return None, "denied by the webhook (nothing to start)"
    if "patch" not in resp:
        return None, "not patched by the webhook (no numbers of Flink's to compare with)"
    result = jsonpatch.apply_patch(obj, json.loads(base64.b64decode(resp["patch"])))
    pod = harness.pod_template(result)
    ann = ((pod.get("metadata") or {}).get("annotations") or {}).get(RESOLVED)
    if not ann:
        return None, "patched without the resolved annotation (nothing to compare with)"
    return pod, json.loads(ann)


ROLES = {"jobmanager": "JobManager", "taskmanager": "TaskManager"}
# The conventional names of the container the webhook sizes, per role (pkg/podspec/plan.c
# choose_container): flink-docker's and Flink's docs' jobmanager and taskmanager, native mode's
# flink-main-container, and the short names the corpus's custom pods use.
CONTAINER_NAMES = {"jobmanager": ("jobmanager", "flink-main-container", "jm"),
                   "taskmanager": ("taskmanager", "flink-main-container", "tm")}


def role_of(ann):
    """The role the annotation names (an annotation without one is a JobManager's)."""
    return ann.get("role") or "jobmanager"


def flink_container(pod, role):
    """The container the webhook sized, as tests/admission's jm_container finds it, for the role:
    the first named as the flink-memory-webhook/container annotation says or with a conventional
    name of the role, else the first."""
    containers = pod["spec"]["containers"]
    wanted = ((pod.get("metadata") or {}).get("annotations") or {}).get("flink-memory-webhook/container")
    names = (wanted,) + CONTAINER_NAMES[role]
    for c in containers:
        if c["name"] in names:
            return c
    return containers[0]


def image_layout(image):
    """Which image's layout this container runs: 'flink' (the official image's, also for custom
    images built on it), 'busybox', or None with the reason."""
    if "bitnami" in image:
        return None, ("Bitnami's image (/opt/bitnami/flink, its own entrypoint.sh, run.sh and "
                      "libflink.sh): not modelled here")
    if re.match(r"(.*/)?busybox(:|@|$)", image):
        return "busybox", None
    return "flink", None


def served_versions():
    out = subprocess.run([FETCH, "--served"], capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        pytest.fail("cannot list apache-flink's versions: " + out.stderr)
    return [v for v in out.stdout.split() if re.fullmatch(r"\d+\.\d+\.\d+", v)]


def vkey(v):
    return tuple(int(x) for x in v.split("."))


def choose_version(image, line, served):
    """The PyPI release to start: the image tag's own version when PyPI serves it, else the
    newest of the annotation's line. (version, note)."""
    tag = image.rsplit("/", 1)[-1]
    tag = tag.split("@", 1)[0]
    tag = tag.split(":", 1)[1] if ":" in tag else ""
    m = re.search(r"(?<![0-9.])(\d+)\.(\d+)(?:\.(\d+))?", tag)
    in_line = sorted((v for v in served if v.rsplit(".", 1)[0] == line), key=vkey)
    if m and m.group(3) is not None:
        want = "%s.%s.%s" % m.groups()
        if want in served and want.rsplit(".", 1)[0] == line:
            return want, None
        if in_line:
            return in_line[-1], "image %s: %s is not on PyPI, %s used" % (image, want, in_line[-1])
    if in_line:
        return in_line[-1], "image %s names no release: Flink %s's newest on PyPI, %s" % (image, line, in_line[-1])
    return None, "PyPI serves no Flink %s" % line


class Plan:
    def __init__(self, case, pod, ann, version, note, skip):
        self.case = case
        self.name = case["name"]
        self.pod = pod
        self.ann = ann
        self.version = version
        self.note = note
        self.skip = skip
        self.result = None
        self.role = role_of(ann) if isinstance(ann, dict) else None

    def container(self):
        """The container of the pod the webhook sized (JobManager or TaskManager)."""
        return flink_container(self.pod, self.role)


def make_plans():
    tmp = tempfile.mkdtemp(prefix="real-start-cm-")
    try:
        cm_file = os.path.join(tmp, "configmaps.yaml")
        with open(cm_file, "w") as f:
            f.write(yaml.safe_dump_all(harness.CORPUS["configmaps"]))
        served = served_versions()
        plans = []
        for case in CASES:
            if ONLY and case["name"] not in ONLY:
                continue
            pod, ann = patched_pod(case, cm_file)
            if pod is None:
                plans.append(Plan(case, None, None, None, None, ann))
                continue
            container = flink_container(pod, role_of(ann))
            layout, why = image_layout(container.get("image", ""))
            if layout != "flink":
                plans.append(Plan(case, pod, ann, None, None, why or "not a Flink image"))
                continue
            version, note = choose_version(container.get("image", ""), ann["flinkVersion"], served)
            if version is None:
                plans.append(Plan(case, pod, ann, None, None, note))
                continue
            plans.append(Plan(case, pod, ann, version, note, None))
        return plans
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------- starting a pod

UBUNTU_PROFILE = """\
# /etc/profile as Ubuntu's (the official Flink images' base): it leaves PATH alone.
if [ "${PS1-}" ]; then
  if [ "${BASH-}" ] && [ "$BASH" != "/bin/sh" ]; then
    [ -f /etc/bash.bashrc ] && . /etc/bash.bashrc
  else
    if [ "$(id -u)" -eq 0 ]; then PS1='# '; else PS1='$ '; fi
  fi
fi
"""
ROOT_PROFILE = """\
# ~/.profile: executed by Bourne-compatible login shells.
if [ "$BASH" ]; then
  if [ -f ~/.bashrc ]; then
    . ~/.bashrc
  fi
fi
"""


def alternatives_without_a_jdk(dest):
    """A copy of this machine's /etc/alternatives without the links into a JDK: the image has no
    /usr/bin/java (its JDK is /opt/java/openjdk), so neither does the sandbox's PATH."""
    os.makedirs(dest)
    for name in os.listdir("/etc/alternatives"):
        src = os.path.join("/etc/alternatives", name)
        if os.path.islink(src):
            target = os.readlink(src)
            if target.startswith("/usr/lib/jvm/"):
                continue
            os.symlink(target, os.path.join(dest, name))


def _write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


class Start:
    """One pod's start in a private directory; run() returns a result dict."""

    def __init__(self, plan, java, parse_args):
        self.plan = plan
        self.java = java
        self.parse_args = parse_args
        self.tmp = tempfile.mkdtemp(prefix="real-start-")
        self.kpod = kubelet.Pod(plan.pod, harness.CORPUS["configmaps"])
        self.volumes = {}

    def volume_dir(self, name):
        if name in self.volumes:
            return self.volumes[name]
        vol = self.kpod.volume(name)
        d = os.path.join(self.tmp, "volumes", name)
        os.makedirs(d)
        files = self.kpod.volume_files(vol)
        if files is not None:
            kubelet.write_atomic_volume(d, files)
            ro = True
        else:
            if "emptyDir" not in vol:
                self.kpod.notes.append("volume %s (%s): an empty directory" %
                                       (name, ",".join(k for k in vol if k != "name")))
            os.chmod(d, 0o777)
            ro = False
            if "emptyDir" in vol:
                self.fill_from_annotation(name)
        self.volumes[name] = (d, ro)
        return self.volumes[name]

    def fill_from_annotation(self, volume):
        """An emptyDir at the Flink container's conf dir that nothing in the pod fills is filled as
        the pod's flink-memory-webhook/configmap annotation says (the job of something outside the
        pod: an operator, a sidecar), and said so. With an init container writing it, nothing."""
        spec = self.plan.pod["spec"]
        if spec.get("initContainers"):
            return False
        ann = ((self.plan.pod.get("metadata") or {}).get("annotations") or {}).get(
            "flink-memory-webhook/configmap")
        if not ann:
            return False
        for vm in self.plan.container().get("volumeMounts") or []:
            if vm["name"] == volume and kubelet.clean_path(vm["mountPath"]) == "/opt/flink/conf" \
                    and not vm.get("subPath"):
                break
        else:
            return False
        name, _, key = ann.partition("/")
        data = (self.kpod.configmap(name) or {}).get("data") or {}
        legacy = vkey(self.plan.version) < (1, 19)
        target = "flink-conf.yaml" if legacy else "config.yaml"
        key = key or target
        if key not in data:
            raise kubelet.Unstartable("ConfigMap %s has no key %s (the annotation names it)" % (name, key))
        d = os.path.join(self.tmp, "volumes", volume)
        _write(os.path.join(d, target), data[key])
        dist_conf = os.path.join(CACHE, self.plan.version, "dist", "conf")
        for f in os.listdir(dist_conf):
            if f.startswith("log4j") or f.startswith("logback"):
                shutil.copy(os.path.join(dist_conf, f), d)
        self.kpod.notes.append(
            "emptyDir %s at /opt/flink/conf filled as the annotation says: %s = ConfigMap %s key %s "
            "(and the release's log4j files); nothing in the pod writes it" % (volume, target, name, key))
        return True

    def binds_of(self, container):
        binds = []
        for vm in container.get("volumeMounts") or []:
            src, ro = self.volume_dir(vm["name"])
            if vm.get("subPath"):
                path = os.path.realpath(os.path.join(src, vm["subPath"]))
                if not (path + "/").startswith(os.path.realpath(src) + "/"):
                    raise kubelet.Unstartable("subPath %s leaves volume %s" % (vm["subPath"], vm["name"]))
                if not os.path.exists(path):
                    if ro:
                        raise kubelet.Unstartable("subPath %s is not in read-only volume %s: the "
                                                  "kubelet cannot create it" % (vm["subPath"], vm["name"]))
                    os.makedirs(path)
                src = path
            kind = "file" if os.path.isfile(src) else "dir"
            binds.append({"source": src, "target": kubelet.clean_path(vm["mountPath"]),
                          "ro": ro or bool(vm.get("readOnly")), "kind": kind})
        return binds

    def spec_for(self, container, cname, layout):
        cdir = os.path.join(self.tmp, "c", cname)
        os.makedirs(cdir)
        image_env = kubelet.IMAGE_ENV if layout == "flink" else kubelet.BUSYBOX_ENV
        env, kube = self.kpod.env(container, image_env)
        if layout == "flink":
            argv = self.kpod.argv(container, kube, kubelet.IMAGE_ENTRYPOINT, kubelet.IMAGE_CMD)
        else:
            argv = self.kpod.argv(container, kube, [], kubelet.BUSYBOX_CMD)
        os.makedirs(os.path.join(cdir, "rootfs"))
        rec = os.path.join(cdir, "rec")
        os.makedirs(os.path.join(rec, "record"))
        _write(os.path.join(rec, "real-java"), self.java + "\n")
        shutil.copytree(self.parse_args, os.path.join(rec, "parse-args"))
        _write(os.path.join(cdir, "hosts"),
               "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
               "%s\t%s\n" % (kubelet.POD_IP, self.kpod.name))
        _write(os.path.join(cdir, "hostname"), self.kpod.name + "\n")
        _write(os.path.join(cdir, "profile"), UBUNTU_PROFILE)
        alternatives_without_a_jdk(os.path.join(cdir, "alternatives"))
        _write(os.path.join(cdir, "root-profile"), ROOT_PROFILE)
        binds = [
            {"source": rec, "target": "/.real-start", "ro": False, "kind": "dir"},
            {"source": os.path.join(cdir, "hosts"), "target": "/etc/hosts", "ro": True, "kind": "file"},
            {"source": os.path.join(cdir, "hostname"), "target": "/etc/hostname", "ro": True, "kind": "file"},
            {"source": os.path.join(cdir, "profile"), "target": "/etc/profile", "ro": True, "kind": "file"},
            {"source": os.path.join(cdir, "alternatives"), "target": "/etc/alternatives", "ro": True, "kind": "dir"},
        ] + self.binds_of(container)
        files = [{"path": "/root/.profile", "source": os.path.join(cdir, "root-profile"), "mode": 0o644}]
        spec = {"root": os.path.join(cdir, "rootfs"), "hostname": self.kpod.name,
                "argv": argv, "env": env, "binds": binds, "files": files,
                "cwd": container.get("workingDir") or (kubelet.IMAGE_WORKDIR if layout == "flink" else "/")}
        if layout == "flink":
            for d in ("upper", "work"):
                os.makedirs(os.path.join(cdir, d))
            spec.update(flink_dist=os.path.join(CACHE, self.plan.version, "dist"),
                        overlay_upper=os.path.join(cdir, "upper"), overlay_work=os.path.join(cdir, "work"))
            files += [{"path": "/docker-entrypoint.sh", "source": ENTRYPOINT, "mode": 0o755},
                      {"path": "/opt/java/openjdk/bin/java", "source": JAVA_WRAPPER, "mode": 0o755}]
        path = os.path.join(cdir, "spec.json")
        with open(path, "w") as f:
            json.dump(spec, f)
        return path, cdir, argv, env

    def run_container(self, container, cname, layout):
        spec, cdir, argv, env = self.spec_for(container, cname, layout)
        out_path, err_path = os.path.join(cdir, "stdout"), os.path.join(cdir, "stderr")
        t0 = time.time()
        with open(out_path, "w") as out, open(err_path, "w") as err:
            try:
                p = subprocess.run(["unshare", "--mount", "--uts", "--pid", "--fork", "--kill-child",
                                    "--propagation", "private", sys.executable, SANDBOX, spec],
                                   stdin=subprocess.DEVNULL, stdout=out, stderr=err, timeout=TIMEOUT)
                rc = p.returncode
            except subprocess.TimeoutExpired:
                rc = "timeout after %d s" % TIMEOUT
        with open(out_path, errors="replace") as f:
            stdout = f.read()
        with open(err_path, errors="replace") as f:
            stderr = f.read()
        rec = os.path.join(cdir, "rec", "record")

        def read(name):
            p = os.path.join(rec, name)
            if not os.path.exists(p):
                return None
            with open(p, errors="replace") as f:
                return f.read()
        return {"container": cname, "argv": argv, "rc": rc, "stdout": stdout, "stderr": stderr,
                "seconds": round(time.time() - t0, 1), "jvm_argv": read("argv"),
                "jvm_env": read("env"), "flags": read("flags"), "jvm_exit": read("exit"),
                "dry_run": read("dry-run"), "dry_run_exit": read("dry-run-exit"),
                "parse": read("parse"), "parse_exit": read("parse-exit"),
                "parse_result": read("parse-result")}

    def run(self):
        try:
            return self._run()
        except kubelet.Unstartable as e:
            return {"status": "cannot start", "reason": "the kubelet would not start it: %s" % e,
                    "notes": self.kpod.notes}
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def _run(self):
        spec = self.plan.pod["spec"]
        for i, ic in enumerate(spec.get("initContainers") or []):
            layout, why = image_layout(ic.get("image", ""))
            res = self.run_container(ic, "init-%d-%s" % (i, ic["name"]), layout or "busybox")
            if res["rc"] != 0:
                return {"status": "cannot start", "notes": self.kpod.notes,
                        "reason": "init container %s exited %s" % (ic["name"], res["rc"]), "run": res}
        main = self.plan.container()
        res = self.run_container(main, main["name"], "flink")
        return {"status": "ran", "run": res, "notes": self.kpod.notes}


# ---------------------------------------------------------------- comparing

def print_flags(text):
    flags = {}
    for line in (text or "").splitlines():
        m = re.match(r"\s*\S+\s+(\w+)\s+:?=\s+(\S+)", line)
        if m:
            flags[m.group(1)] = m.group(2)
    return flags


def jvm_args_of(ann):
    out = {}
    for w in (ann.get("jvmArgs") or "").split():
        for flag, key in (("-Xmx", "Xmx"), ("-Xms", "Xms"), ("-XX:MaxMetaspaceSize=", "MaxMetaspaceSize"),
                          ("-XX:MaxDirectMemorySize=", "MaxDirectMemorySize")):
            if w.startswith(flag):
                out[key] = int(w[len(flag):])
    return out


# Per role, what Flink's scripts hand the main class from BashJavaUtils (the resource manager
# in native mode: the same generateDynamicConfigsStr): the prefix of the -D keys, each key with
# the annotation's field it must equal, and the keys whose sum is the total process memory.
# JobManagerProcessUtils and TaskExecutorProcessUtils set jvm-overhead.min and .max (and the
# TaskManager's network.min and .max) both to the size they resolved.
DYNAMIC = {
    "jobmanager": ("jobmanager.memory.",
                   (("heap.size", "heap"), ("off-heap.size", "offHeap"), ("jvm-metaspace.size", "metaspace"),
                    ("jvm-overhead.min", "overhead"), ("jvm-overhead.max", "overhead")),
                   ("heap.size", "off-heap.size", "jvm-metaspace.size", "jvm-overhead.max")),
    "taskmanager": ("taskmanager.memory.",
                    (("framework.heap.size", "frameworkHeap"), ("task.heap.size", "taskHeap"),
                     ("framework.off-heap.size", "frameworkOffHeap"), ("task.off-heap.size", "taskOffHeap"),
                     ("network.min", "network"), ("network.max", "network"), ("managed.size", "managed"),
                     ("jvm-metaspace.size", "metaspace"), ("jvm-overhead.min", "overhead"),
                     ("jvm-overhead.max", "overhead")),
                    ("framework.heap.size", "task.heap.size", "framework.off-heap.size", "task.off-heap.size",
                     "network.max", "managed.size", "jvm-metaspace.size", "jvm-overhead.max")),
}


def dynamic_memory(argv_text, prefix):
    """Flink's -D <prefix>*=<bytes>b on the main class's command line (BashJavaUtils' output, or
    the resource manager's in native mode); the last of a key wins, as in Flink's parser."""
    words = [w for w in (argv_text or "").split("\0")]
    props = {}
    for i, w in enumerate(words):
        kv = None
        if w == "-D" and i + 1 < len(words):
            kv = words[i + 1]
        elif w.startswith("-D") and "=" in w and w[2:].startswith(prefix):
            kv = w[2:]
        if kv and kv.startswith(prefix) and "=" in kv:
            k, v = kv.split("=", 1)
            if re.fullmatch(r"\d+b", v):
                props[k] = int(v[:-1])
    return props


GCS = ("UseSerialGC", "UseParallelGC", "UseG1GC", "UseZGC", "UseShenandoahGC")
_reference = {}
_reference_lock = threading.Lock()
JVM_FLAG_TEXT = {"Xmx": "-Xmx", "Xms": "-Xms", "MaxMetaspaceSize": "-XX:MaxMetaspaceSize",
                 "MaxDirectMemorySize": "-XX:MaxDirectMemorySize"}
# PrintFlagsFinal's name of what each flag sets.
JVM_FINAL_FLAG = {"Xmx": "MaxHeapSize", "Xms": "InitialHeapSize", "MaxMetaspaceSize": "MaxMetaspaceSize",
                  "MaxDirectMemorySize": "MaxDirectMemorySize"}


def flinks_sizes(ann):
    """The memory flags Flink's scripts give the role, from the annotation's components, as
    [(flag, bytes, what it is)] (ProcessMemoryUtils.generateJvmParametersStr). A JobManager: -Xmx
    and -Xms the heap, -XX:MaxMetaspaceSize the metaspace, -XX:MaxDirectMemorySize the off-heap size
    when Flink sets one (jobmanager.memory.enable-jvm-direct-memory-limit, which the annotation's
    jvmArgs then carry). A TaskManager: -Xmx and -Xms the framework and task heap,
    -XX:MaxDirectMemorySize the framework and task off-heap and the network memory (always set),
    -XX:MaxMetaspaceSize the metaspace."""
    if role_of(ann) == "taskmanager":
        heap = ann["frameworkHeap"] + ann["taskHeap"]
        direct = ann["frameworkOffHeap"] + ann["taskOffHeap"] + ann["network"]
        return [("Xmx", heap, "frameworkHeap + taskHeap"), ("Xms", heap, "frameworkHeap + taskHeap"),
                ("MaxDirectMemorySize", direct, "frameworkOffHeap + taskOffHeap + network"),
                ("MaxMetaspaceSize", ann["metaspace"], "metaspace")]
    sizes = [("Xmx", ann["heap"], "heap"), ("Xms", ann["heap"], "heap (-Xms)"),
             ("MaxMetaspaceSize", ann["metaspace"], "metaspace")]
    if "MaxDirectMemorySize" in jvm_args_of(ann):
        sizes.append(("MaxDirectMemorySize", ann["offHeap"], "offHeap"))
    return sizes


def flinks_flags(sizes):
    return " ".join("%s%s%d" % (JVM_FLAG_TEXT[f], "" if f in ("Xmx", "Xms") else "=", v) for f, v, _ in sizes)


def reference_flags(java, jvm_args, gc):
    """PrintFlagsFinal of this JDK started with exactly Flink's memory flags and the same
    collector: what "the JVM gets Flink's numbers" looks like, the JVM's own rounding included
    (G1 aligns the heap to the larger of its region size and 2 MiB: Flink's 1063 MiB heap is
    1064 MiB in the JVM whoever starts it)."""
    key = (java, jvm_args, gc)
    with _reference_lock:
        if key not in _reference:
            cmd = [java] + jvm_args.split() + (["-XX:+" + gc] if gc else []) + ["-XX:+PrintFlagsFinal", "-version"]
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                               env={"PATH": "/usr/bin:/bin", "HOME": "/root"})
            if p.returncode != 0:
                raise RuntimeError("%s: %s" % (" ".join(cmd), p.stderr))
            _reference[key] = print_flags(p.stdout)
        return _reference[key]


# The TaskManager's own sizes, as ParseArgs writes them from TaskExecutorResourceUtils'
# resourceSpecFromConfig and the configuration (tests/real/ParseArgs.java), with the annotation's
# field each must equal.
TM_SPEC = (("taskHeap", "taskHeap"), ("taskOffHeap", "taskOffHeap"), ("network", "network"),
           ("managed", "managed"), ("frameworkHeap", "frameworkHeap"), ("frameworkOffHeap", "frameworkOffHeap"))


def tm_spec(parse_result):
    m = re.search(r"TaskExecutorResourceSpec: (.*)$", parse_result or "")
    if not m:
        return None
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)b", m.group(1))}


def compare(plan, res, java):
    """[(what, want, got, ok)] for one started pod."""
    ann = plan.ann
    flags = print_flags(res["flags"])
    jargs = jvm_args_of(ann)
    gc = next((g for g in GCS if flags.get(g) == "true"), None)
    sizes = [s for s in flinks_sizes(ann) if s[0] != "Xms" or "Xms" in jargs]
    ref = reference_flags(java, flinks_flags(flinks_sizes(ann)), gc)
    rows = []
    # The annotation's jvmArgs say the flags its components make.
    for flag, value, what in sizes:
        rows.append(("annotation jvmArgs %s vs %s" % (JVM_FLAG_TEXT[flag], what), value, jargs.get(flag),
                     jargs.get(flag) == value))
    # The JVM's final flags against a JVM started with exactly those.
    for flag, value, what in sizes:
        final = JVM_FINAL_FLAG[flag]
        want, got = ref.get(final), flags.get(final)
        label = "%s vs %s" % (final, what)
        if want != str(value):
            label += " %d, as the JVM rounds it" % value
        rows.append((label, want, got, want is not None and got == want))
    # The container's memory after the patch.
    c = plan.container()
    res_ = c.get("resources") or {}
    limit = (res_.get("limits") or {}).get("memory")
    request = (res_.get("requests") or {}).get("memory")
    total = kubelet.parse_quantity(ann["totalProcess"])
    lim = kubelet.parse_quantity(limit) if limit is not None else None
    rows.append(("limits.memory vs annotation limit", ann.get("limit"), limit,
                 lim is not None and lim == kubelet.parse_quantity(ann["limit"])))
    if "request" in ann:
        rows.append(("requests.memory vs annotation request", ann["request"], request,
                     request is not None and kubelet.parse_quantity(request) == kubelet.parse_quantity(ann["request"])))
    if ann.get("sizing") == "from-request":
        # Sized from its request: the limit is headroom the pod asks for (README, "Sizing Flink
        # from the pod").
        rows.append(("limit >= totalProcess (from-request)", ann["totalProcess"], limit,
                     lim is not None and lim >= total))
    elif ann.get("headroomKept") or ann.get("limitFactor"):
        rows.append(("limit >= totalProcess (%s)" % ("headroom kept" if ann.get("headroomKept") else
                                                      "limit factor " + ann["limitFactor"]),
                     ann["totalProcess"], limit, lim is not None and lim >= total))
    else:
        rows.append(("limits.memory vs totalProcess", ann["totalProcess"], limit, lim == total))
    # What Flink's own scripts computed, when they hand it to the main class. A JobManager sized
    # once from its pod keeps the file's sizes there (only its JVM flags are the pod's, which the
    # rows above check): nothing to compare.
    prefix, fields, parts = DYNAMIC[plan.role]
    dyn = {} if ann.get("sizing") and ann.get("follows") is False else dynamic_memory(res["jvm_argv"], prefix)
    for key, field in fields:
        if prefix + key in dyn:
            got = dyn[prefix + key]
            rows.append(("-D %s%s vs %s" % (prefix, key, field), ann[field], got, got == ann[field]))
    if dyn and all(prefix + p in dyn for p in parts):
        s = sum(dyn[prefix + p] for p in parts)
        rows.append(("the -D sizes' sum vs totalProcess", total, s, s == total))
    # What the TaskManager itself would run with (its resource spec, from Flink's classes).
    if plan.role == "taskmanager":
        spec = tm_spec(res["parse_result"])
        if spec is None:
            rows.append(("the TaskManager's resource spec (ParseArgs)", "its sizes", None, False))
        else:
            for key, field in TM_SPEC:
                rows.append(("the TaskManager's %s vs %s" % (key, field), ann[field], spec.get(key),
                             spec.get(key) == ann[field]))
    return rows


def tail(text, n=25):
    lines = (text or "").rstrip("\n").splitlines()
    return "\n".join("    | " + l for l in lines[-n:])


def judge(plan, out, java):
    """Fills plan.result: status matched / mismatched / cannot start / skipped, and a report."""
    if out["status"] == "cannot start":
        run = out.get("run")
        detail = ""
        if run:
            detail = "\n  stderr (tail):\n" + tail(run["stderr"]) + "\n  stdout (tail):\n" + tail(run["stdout"], 10)
        return {"status": "cannot start", "reason": out["reason"], "detail": detail, "notes": out["notes"]}
    run = out["run"]
    role = ROLES[plan.role]
    if run["jvm_argv"] is None:
        return {"status": "cannot start", "notes": out["notes"],
                "reason": "the container exited %s before starting the %s's JVM" % (run["rc"], role),
                "detail": "\n  stderr (tail):\n" + tail(run["stderr"]) + "\n  stdout (tail):\n" + tail(run["stdout"], 10),
                "run": run}
    if (run["dry_run_exit"] or "").strip() != "0":
        return {"status": "cannot start", "notes": out["notes"],
                "reason": "the JVM does not start with this command line (java --dry-run "
                          "exit %s)" % (run["dry_run_exit"] or "?").strip(),
                "detail": "\n  JVM output (tail):\n" + tail(run["dry_run"], 10), "run": run}
    verdict = (run["parse_result"] or "").strip()
    if not verdict:
        return {"status": "suite error", "notes": out["notes"],
                "reason": "ParseArgs (Flink's main class's parsing) did not run or said nothing "
                          "(exit %s)" % (run["parse_exit"] or "?").strip(),
                "detail": "\n  its output (tail):\n" + tail(run["parse"], 15), "run": run}
    if verdict.startswith("error:"):
        return {"status": "suite error", "notes": out["notes"],
                "reason": "ParseArgs could not do what the entrypoint's main does: " + verdict,
                "detail": "\n  its output (tail):\n" + tail(run["parse"], 15), "run": run}
    if (run["parse_exit"] or "0").strip() != "0":
        message = verdict[len("failed: "):] if verdict.startswith("failed: ") else verdict
        return {"status": "cannot start", "notes": out["notes"],
                "reason": "Flink's main ends before the %s starts (exit %s): %s"
                          % (role, run["parse_exit"].strip(), message),
                "detail": "\n  Flink's output (tail):\n" + tail(run["parse"], 15), "run": run}
    if (run["jvm_exit"] or "").strip() != "0":
        return {"status": "cannot start", "notes": out["notes"],
                "reason": "the %s's JVM refused its options (exit %s)" % (role, (run["jvm_exit"] or "?").strip()),
                "detail": "\n  JVM output (tail):\n" + tail(run["flags"], 10), "run": run}
    rows = compare(plan, run, java)
    ok = all(r[3] for r in rows)
    return {"status": "matched" if ok else "mismatched", "rows": rows, "notes": out["notes"], "run": run}


def describe(plan):
    r = plan.result
    lines = ["%s: %s" % (plan.name, r["status"].upper() if r["status"] != "matched" else "matched")]
    if plan.version:
        lines.append("  %s, Flink %s from PyPI%s" % (ROLES[plan.role], plan.version,
                                                     " (%s)" % plan.note if plan.note else ""))
    if r.get("run"):
        lines.append("  command: %s" % json.dumps(r["run"]["argv"])[:300])
    if r.get("reason"):
        lines.append("  reason: " + r["reason"])
    if r.get("run") and r["run"].get("parse_result") and r["status"] in ("matched", "mismatched"):
        lines.append("  Flink's main: " + r["run"]["parse_result"].strip())
    for n in r.get("notes") or []:
        lines.append("  note: " + n)
    for what, want, got, ok in r.get("rows") or []:
        lines.append("  %s %s: want %s, got %s" % ("ok  " if ok else "DIFF", what, want, got))
    if r.get("detail"):
        lines.append(r["detail"])
    return "\n".join(lines)


# ---------------------------------------------------------------- the run

@pytest.fixture(scope="session")
def started(request):
    global _capman
    _capman = request.config.pluginmanager.getplugin("capturemanager")
    if os.geteuid() != 0:
        pytest.skip("needs root for mount namespaces (unshare -m)")
    java = real_java()
    t0 = time.time()
    parse_args = parse_args_classes(java)
    plans = make_plans()
    todo = [p for p in plans if not p.skip]
    versions = sorted({p.version for p in todo}, key=vkey)
    log("%d cases, %d to start, Flink releases %s" % (len(plans), len(todo), " ".join(versions)))
    fetch = subprocess.Popen([FETCH] + versions, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    for line in fetch.stdout:
        say(line)
    if fetch.wait() != 0:
        pytest.fail("fetch-flink.sh failed")
    log("releases ready (%.0f s); starting pods with %s, %d at a time" % (time.time() - t0, java, WORKERS))
    for p in plans:
        if p.skip:
            p.result = {"status": "skipped", "reason": p.skip}
    done = [0]

    def one(p):
        t = time.time()
        p.result = judge(p, Start(p, java, parse_args).run(), java)
        with _log_lock:
            done[0] += 1
            n = done[0]
        log("[%d/%d] %s: %s (%s, Flink %s, %.1f s)" % (n, len(todo), p.name, p.result["status"],
                                                           ROLES[p.role], p.version, time.time() - t))
    with concurrent.futures.ThreadPoolExecutor(max_workers=WORKERS) as ex:
        list(ex.map(one, todo))
    counts = {}
    for p in plans:
        counts[p.result["status"]] = counts.get(p.result["status"], 0) + 1
    report = ["", "=" * 100, "real-start: what the JVMs got (%s)" % ", ".join(
        "%d %s" % (n, s) for s, n in sorted(counts.items()))]
    for p in plans:
        if p.result["status"] != "skipped":
            report.append(describe(p))
    started_by = {}
    for p in todo:
        if p.result["status"] in ("matched", "mismatched"):
            by_version = started_by.setdefault(p.role, {})
            by_version[p.version] = by_version.get(p.version, 0) + 1
    for role in sorted(started_by):
        n = sum(started_by[role].values())
        report.append("started and compared: %d %s pods (%s)" % (n, ROLES[role], ", ".join(
            "%s: %d" % (v, started_by[role][v]) for v in sorted(started_by[role], key=vkey))))
    report.append("skipped:")
    for p in plans:
        if p.result["status"] == "skipped":
            report.append("  %s: %s" % (p.name, p.result["reason"]))
    report.append("real-start: %.0f s in all" % (time.time() - t0))
    report.append("=" * 100)
    say("\n".join(report) + "\n")
    return {p.name: p for p in plans}


def test_known_findings_are_cases_of_the_corpus():
    """A finding names a case of cases.yaml: a renamed or removed case takes its entry along."""
    names = {c["name"] for c in CASES}
    stale = sorted(n for n in KNOWN_FINDINGS if n not in names)
    assert not stale, "KNOWN_FINDINGS names cases that are not in cases.yaml: %s" % stale


@pytest.mark.parametrize("name", [c["name"] for c in CASES if not ONLY or c["name"] in ONLY])
def test_starts_with_flinks_numbers(name, started):
    plan = started[name]
    r = plan.result
    if r["status"] == "skipped":
        pytest.skip(r["reason"])
    if name in KNOWN_FINDINGS:
        reason, why = KNOWN_FINDINGS[name]
        if r["status"] == "matched":
            pytest.fail("%s starts and matches now: take it off KNOWN_FINDINGS\n%s" % (name, describe(plan)))
        if r["status"] != "cannot start" or reason not in r.get("reason", ""):
            pytest.fail("%s is a known finding (%s), but now: %s\n%s" % (name, reason, r["status"], describe(plan)))
        pytest.xfail("finding: " + why)
    assert r["status"] == "matched", describe(plan)
