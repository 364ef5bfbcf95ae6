"""What the kubelet and the container runtime make of a Pod's container, for tests/real.

Pure functions, no mounts: the container's environment ($(VAR) expansion, envFrom, valueFrom),
its command line (the image's ENTRYPOINT/CMD or the pod's command/args, expanded), its volumes
written out the way the kubelet's atomic writer lays them out (files behind ..data), and the list
of mounts (mountPath, subPath, read-only for ConfigMap, Secret, downwardAPI and projected
volumes). sandbox.py does the mounting and starts the process.

Modelled after Kubernetes' third_party/forked/golang/expansion (Expand), the kubelet's
makeEnvironmentVariables (envFrom first, then env in order, each value expanded over what is
defined so far), its volume plugins' atomic writer and containerd's ordering of mounts by depth.
Left out: service links of other Services (only the API server's KUBERNETES_* variables are
set), resourceFieldRef divisors other than 1, fieldRefs the downward API cannot give before
scheduling (status.podIP and the like get fixed made-up values), Secrets (not in the corpus:
taken to exist with no keys, or in a volume, with the data of the ConfigMap that the pod's
flink-memory-webhook/configmap annotation names; said so in a note either way).
"""
import json
import os
import posixpath
import re

# The official Flink image (flink-docker's Dockerfile over eclipse-temurin): what this suite
# models. LANG/LC_ALL: the images set en_US.UTF-8, which this machine has no locale for; C.UTF-8
# keeps the shells quiet and changes nothing the JVM's memory depends on.
IMAGE_ENV = {
    "PATH": "/opt/flink/bin:/opt/java/openjdk/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "JAVA_HOME": "/opt/java/openjdk",
    "FLINK_HOME": "/opt/flink",
    "LANG": "C.UTF-8",
    "LANGUAGE": "en_US:en",
    "LC_ALL": "C.UTF-8",
    "GOSU_VERSION": "1.11",
}
IMAGE_ENTRYPOINT = ["/docker-entrypoint.sh"]
IMAGE_CMD = ["help"]
IMAGE_WORKDIR = "/opt/flink"

# busybox's image, for init containers and sidecars.
BUSYBOX_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
BUSYBOX_CMD = ["sh"]

POD_IP = "10.244.1.23"
NODE_NAME = "node-1"
HOST_IP = "192.0.2.10"  # documentation range: never contacted
SERVICE_ENV = {
    "KUBERNETES_SERVICE_HOST": "10.96.0.1",
    "KUBERNETES_SERVICE_PORT": "443",
    "KUBERNETES_SERVICE_PORT_HTTPS": "443",
    "KUBERNETES_PORT": "tcp://10.96.0.1:443",
    "KUBERNETES_PORT_443_TCP": "tcp://10.96.0.1:443",
    "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
    "KUBERNETES_PORT_443_TCP_PORT": "443",
    "KUBERNETES_PORT_443_TCP_ADDR": "10.96.0.1",
}


def expand(text, lookup):
    """Kubernetes' $(VAR) expansion: $(NAME) is the variable's value when lookup has it, else
    stays as written; $$ is $; a lone $ stays."""
    out = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == "$" and i + 1 < n:
            nxt = text[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                close = text.find(")", i + 2)
                if close >= 0:
                    name = text[i + 2:close]
                    value = lookup(name)
                    out.append(value if value is not None else "$(" + name + ")")
                    i = close + 1
                    continue
                out.append("$(")
                i += 2
                continue
            out.append("$" + nxt)
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


class Unstartable(Exception):
    """What the kubelet would refuse: the pod would not get a running container."""


def parse_quantity(q):
    """A Kubernetes quantity as bytes (int), e.g. 1600Mi, 2Gi, 1677721600, 2.5G, 512M."""
    if isinstance(q, (int, float)):
        return int(q)
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E|m)?", str(q).strip())
    if not m:
        raise ValueError("not a quantity: %r" % (q,))
    num, suf = m.groups()
    mult = {None: 1, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "Pi": 1 << 50,
            "Ei": 1 << 60, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
            "E": 10**18, "m": 0.001}[suf]
    value = float(num) * mult if "." in num or suf == "m" else int(num) * mult
    return int(-(-value // 1))  # rounded up, as the API server does


def _labels_text(d):
    return "\n".join('%s="%s"' % (k, v) for k, v in sorted((d or {}).items()))


class Pod:
    def __init__(self, pod, configmaps, namespace="flink"):
        self.pod = pod
        self.meta = pod.get("metadata") or {}
        self.spec = pod["spec"]
        self.ns = self.meta.get("namespace") or namespace
        name = self.meta.get("name")
        if not name:
            name = (self.meta.get("generateName") or "flink-jobmanager-") + "x7k2q"
        self.name = name
        self.cms = {(cm["metadata"].get("namespace", namespace), cm["metadata"]["name"]): cm
                    for cm in configmaps}
        self.notes = []
        # Secrets are not in the corpus. A Secret volume of a pod whose
        # flink-memory-webhook/configmap annotation says where its configuration is holds that
        # (the annotation is the pod's word for what the JobManager reads); others have no keys.
        self.annotated_config = None
        ann = (self.meta.get("annotations") or {}).get("flink-memory-webhook/configmap")
        if ann:
            cm_name, _, key = ann.partition("/")
            cm = self.cms.get((self.ns, cm_name))
            if cm is not None:
                data = cm.get("data") or {}
                self.annotated_config = ({key: data[key]} if key in data else {}) if key else dict(data)
                self.annotated_source = "ConfigMap %s%s" % (cm_name, " key " + key if key else "")

    # ---- lookups ----

    def configmap(self, name, optional=False):
        cm = self.cms.get((self.ns, name))
        if cm is None and name == "kube-root-ca.crt":
            # Published in every namespace by the controller manager.
            cm = {"data": {"ca.crt": "-----BEGIN CERTIFICATE-----\n(test)\n-----END CERTIFICATE-----\n"}}
        if cm is None and not optional:
            raise Unstartable("ConfigMap %s/%s does not exist: the kubelet does not start the container" % (self.ns, name))
        return cm

    def secret(self, name, optional=False, volume=False):
        if volume and self.annotated_config is not None:
            self.notes.append("Secret %s is not in the corpus: its volume holds %s, as the pod's "
                              "flink-memory-webhook/configmap annotation says" % (name, self.annotated_source))
            return {"data": dict(self.annotated_config)}
        self.notes.append("Secret %s is not in the corpus: taken to exist with no keys" % name)
        return {"data": {}}

    def field(self, path):
        meta = self.meta
        if path == "metadata.name":
            return self.name
        if path == "metadata.namespace":
            return self.ns
        if path == "metadata.uid":
            return "0d7c1a52-6b1e-4c55-9a5e-3f8f1f6a2b10"
        if path.startswith("metadata.labels['") and path.endswith("']"):
            return (meta.get("labels") or {}).get(path[len("metadata.labels['"):-2], "")
        if path.startswith("metadata.annotations['") and path.endswith("']"):
            return (meta.get("annotations") or {}).get(path[len("metadata.annotations['"):-2], "")
        if path == "metadata.labels":
            return _labels_text(meta.get("labels"))
        if path == "metadata.annotations":
            return _labels_text(meta.get("annotations"))
        if path in ("status.podIP", "status.podIPs"):
            return POD_IP
        if path == "status.hostIP":
            return HOST_IP
        if path == "spec.nodeName":
            return NODE_NAME
        if path == "spec.serviceAccountName":
            return self.spec.get("serviceAccountName", "default")
        raise Unstartable("fieldRef %s is not modelled" % path)

    def resource_field(self, container, ref):
        res = container.get("resources") or {}
        kind, _, what = ref["resource"].partition(".")
        value = (res.get(kind) or {}).get(what)
        if value is None:
            # Unset limits read as the node's allocatable; requests as 0.
            return str(24 << 30) if kind == "limits" else "0"
        if what == "memory" or what.startswith("ephemeral"):
            divisor = parse_quantity(ref.get("divisor", "1"))
            return str(-(-parse_quantity(value) // divisor))
        return str(value)

    # ---- env and command ----

    def env(self, container, image_env):
        """The container's environment, as the runtime gives it to the process, and the part of it
        Kubernetes itself defines (what $(VAR) in command and args can name)."""
        defined = {}
        for src in container.get("envFrom") or []:
            prefix = src.get("prefix", "")
            if "configMapRef" in src:
                ref = src["configMapRef"]
                cm = self.configmap(ref["name"], ref.get("optional", False))
                data = (cm or {}).get("data") or {}
            elif "secretRef" in src:
                ref = src["secretRef"]
                data = self.secret(ref["name"], ref.get("optional", False))["data"]
            else:
                continue
            for k, v in data.items():
                defined[prefix + k] = v
        lookup_base = dict(SERVICE_ENV)
        for e in container.get("env") or []:
            name = e["name"]
            if "value" in e or "valueFrom" not in e:
                def lookup(n, _d=defined):
                    if n in _d:
                        return _d[n]
                    return lookup_base.get(n)
                defined[name] = expand(e.get("value", ""), lookup)
            else:
                vf = e["valueFrom"]
                if "fieldRef" in vf:
                    defined[name] = self.field(vf["fieldRef"]["fieldPath"])
                elif "resourceFieldRef" in vf:
                    defined[name] = self.resource_field(container, vf["resourceFieldRef"])
                elif "configMapKeyRef" in vf:
                    ref = vf["configMapKeyRef"]
                    cm = self.configmap(ref["name"], ref.get("optional", False))
                    data = (cm or {}).get("data") or {}
                    if ref["key"] in data:
                        defined[name] = data[ref["key"]]
                    elif not ref.get("optional"):
                        raise Unstartable("ConfigMap %s has no key %s" % (ref["name"], ref["key"]))
                elif "secretKeyRef" in vf:
                    ref = vf["secretKeyRef"]
                    self.secret(ref["name"])
                    if not ref.get("optional"):
                        raise Unstartable("Secret %s key %s is not in the corpus" % (ref["name"], ref["key"]))
        kube = dict(SERVICE_ENV)
        kube.update(defined)
        env = dict(image_env)
        env["HOSTNAME"] = self.name
        env.setdefault("HOME", "/root")
        env.update(kube)
        return env, kube

    def argv(self, container, kube_env, entrypoint, cmd):
        """The process's argv: the pod's command/args expanded over the variables Kubernetes
        defines (not the image's), or the image's ENTRYPOINT and CMD."""
        def lookup(n):
            return kube_env.get(n)
        command = container.get("command")
        args = container.get("args")
        if command:
            return [expand(w, lookup) for w in command] + [expand(w, lookup) for w in (args or [])]
        if args is not None:
            return list(entrypoint) + [expand(w, lookup) for w in args]
        return list(entrypoint) + list(cmd)

    # ---- volumes ----

    def volume(self, name):
        for v in self.spec.get("volumes") or []:
            if v.get("name") == name:
                return v
        raise Unstartable("volumeMount of an undefined volume %s" % name)

    def _items(self, data, items, optional_name):
        """ConfigMap/Secret data as {path: text}: all keys, or the items' key -> path."""
        if items is None:
            return dict(data)
        out = {}
        for it in items:
            if it["key"] not in data:
                raise Unstartable("%s has no key %s (an items entry names it)" % (optional_name, it["key"]))
            out[it["path"]] = data[it["key"]]
        return out

    def volume_files(self, vol):
        """The files of a ConfigMap, Secret, downwardAPI or projected volume: {path: text}."""
        if "configMap" in vol:
            src = vol["configMap"]
            cm = self.configmap(src["name"], src.get("optional", False))
            return self._items((cm or {}).get("data") or {}, src.get("items"), "ConfigMap " + src["name"])
        if "secret" in vol:
            src = vol["secret"]
            return self._items(self.secret(src.get("secretName", "?"), volume=True)["data"], src.get("items"),
                               "Secret " + src.get("secretName", "?"))
        if "downwardAPI" in vol:
            return {it["path"]: self.field(it["fieldRef"]["fieldPath"])
                    for it in vol["downwardAPI"].get("items") or [] if "fieldRef" in it}
        if "projected" in vol:
            files = {}
            for s in vol["projected"].get("sources") or []:
                if "configMap" in s:
                    src = s["configMap"]
                    cm = self.configmap(src["name"], src.get("optional", False))
                    files.update(self._items((cm or {}).get("data") or {}, src.get("items"),
                                             "ConfigMap " + src["name"]))
                elif "secret" in s:
                    src = s["secret"]
                    sec = self.secret(src["name"], src.get("optional", False), volume=True)
                    files.update(self._items(sec["data"], src.get("items"), "Secret " + src["name"]))
                elif "downwardAPI" in s:
                    for it in s["downwardAPI"].get("items") or []:
                        if "fieldRef" in it:
                            files[it["path"]] = self.field(it["fieldRef"]["fieldPath"])
                elif "serviceAccountToken" in s:
                    files[s["serviceAccountToken"]["path"]] = "test-token"
            return files
        return None


def write_atomic_volume(directory, files, mode=0o644):
    """The kubelet's atomic writer: the files under ..<timestamp>/, ..data pointing at it, and a
    symlink at the top for each first path component."""
    ts = "..2026_12_02_12_00_00.000000001"
    real = os.path.join(directory, ts)
    os.makedirs(real, exist_ok=True)
    tops = set()
    for path, text in files.items():
        dest = os.path.join(real, path)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "w") as f:
            f.write(text)
        os.chmod(dest, mode)
        tops.add(path.split("/")[0])
    os.symlink(ts, os.path.join(directory, "..data"))
    for top in sorted(tops):
        os.symlink(posixpath.join("..data", top), os.path.join(directory, top))


def clean_path(p):
    """A mount path as the runtime cleans it (filepath.Clean)."""
    p = posixpath.normpath("/" + (p or ""))
    return "/" + p.lstrip("/")


def dump(obj):
    return json.dumps(obj, indent=1, sort_keys=True)
