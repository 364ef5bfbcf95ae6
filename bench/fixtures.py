"""Benchmark fixtures: realistic AdmissionReviews of Flink pods, written as JSON files.

The pods are made the way the admission corpus makes them (tests/admission/test_admission.py):
what the API server's defaulting adds to a Pod, wrapped in an AdmissionReview as the API server
sends it. Random parts (uids, the token volume's suffix) come from a seeded generator, so the files
are identical on every run and instruction counts repeat.

Every fixture takes its Flink configuration from FLINK_PROPERTIES (no ConfigMap), so the server and
the peer can answer it without an API server:
  jm-5k        a standalone JobManager pod of a Deployment, about 5 KB
  two-container  a JobManager and a log-shipping sidecar
  jm-64k       the jm-5k pod with a large environment and annotations, about 64 KB
  jm-cm        a JobManager whose flink-conf.yaml comes from a ConfigMap (for the lookup benchmark)
  tm-5k        a standalone TaskManager pod of a Deployment (Flink's session cluster), about 5 KB

The generator draws the fixtures in this order; a new one goes last, so the random parts of the
others stay byte for byte the same.

usage: python3 bench/fixtures.py OUTDIR
"""
import json
import os
import random
import sys
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "admission"))

RNG = random.Random(20240611)
uuid.uuid4 = lambda: uuid.UUID(int=RNG.getrandbits(128), version=4)

import test_admission as corpus  # noqa: E402  (after the uuid seed, which it uses)

FLINK_PROPERTIES = """jobmanager.rpc.address: flink-jobmanager
jobmanager.rpc.port: 6123
blob.server.port: 6124
taskmanager.numberOfTaskSlots: 4
parallelism.default: 4
state.backend.type: rocksdb
state.checkpoints.dir: s3://flink-checkpoints/orders-enrichment
execution.checkpointing.interval: 60s
high-availability.type: kubernetes
high-availability.storageDir: s3://flink-ha/orders-enrichment
kubernetes.cluster-id: orders-enrichment
jobmanager.memory.process.size: 2g
"""


def jobmanager_container(extra_env=()):
    env = [
        {"name": "FLINK_PROPERTIES", "value": FLINK_PROPERTIES},
        {"name": "FLINK_ENV_JAVA_OPTS_JM", "value": "-Xmx1g -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError"},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}},
        {"name": "TZ", "value": "UTC"},
    ]
    env.extend(extra_env)
    return {
        "name": "jobmanager",
        "image": "flink:1.18.1-scala_2.12-java11",
        "args": ["jobmanager"],
        "env": env,
        "ports": [{"containerPort": 6123, "name": "rpc", "protocol": "TCP"},
                  {"containerPort": 6124, "name": "blob-server", "protocol": "TCP"},
                  {"containerPort": 8081, "name": "webui", "protocol": "TCP"},
                  {"containerPort": 9249, "name": "metrics", "protocol": "TCP"}],
        "resources": {"limits": {"cpu": "2", "memory": "2Gi"},
                      "requests": {"cpu": "1", "memory": "1Gi"}},
        "livenessProbe": {"tcpSocket": {"port": 6123}, "initialDelaySeconds": 30,
                          "periodSeconds": 60, "timeoutSeconds": 1, "successThreshold": 1,
                          "failureThreshold": 3},
        "readinessProbe": {"httpGet": {"path": "/config", "port": 8081, "scheme": "HTTP"},
                           "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1,
                           "failureThreshold": 3},
        "securityContext": {"runAsUser": 9999, "runAsNonRoot": True,
                            "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"},
                         {"name": "flink-logs", "mountPath": "/opt/flink/log"},
                         {"name": "s3-credentials", "mountPath": "/etc/s3", "readOnly": True}],
    }


def jobmanager_pod(containers, annotations=None):
    return {
        "kind": "Pod",
        "metadata": {
            "generateName": "orders-enrichment-jobmanager-7d9c5b8f4-",
            "labels": {"app": "orders-enrichment", "component": "jobmanager",
                       "pod-template-hash": "7d9c5b8f4", "app.kubernetes.io/part-of": "streaming",
                       "team": "data-platform"},
            "annotations": dict({"prometheus.io/scrape": "true", "prometheus.io/port": "9249"},
                                **(annotations or {})),
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                 "name": "orders-enrichment-jobmanager-7d9c5b8f4",
                                 "uid": "3f0c6a52-9a61-4b4e-a3a4-1f6b0c3f2a10",
                                 "controller": True, "blockOwnerDeletion": True}],
        },
        "spec": {
            "containers": containers,
            "volumes": [{"name": "tmp", "emptyDir": {}},
                        {"name": "flink-logs", "emptyDir": {"sizeLimit": "1Gi"}},
                        {"name": "s3-credentials", "secret": {"secretName": "s3-credentials",
                                                              "defaultMode": 420}}],
            "serviceAccountName": "flink",
            "serviceAccount": "flink",
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "podAffinityTerm": {
                    "labelSelector": {"matchLabels": {"app": "orders-enrichment",
                                                      "component": "jobmanager"}},
                    "topologyKey": "kubernetes.io/hostname"}}]}},
        },
    }


# The TaskManagers' configuration of a session cluster as Flink's docs lay it out (standalone
# Kubernetes: taskmanager-session-deployment.yaml and its flink-conf.yaml), with RocksDB state,
# 4 slots and a process size of 4g. Flink 1.18.1's BashJavaUtils prints for it -Xmx1664299798
# -Xms1664299798 -XX:MaxDirectMemorySize=493921243 -XX:MaxMetaspaceSize=268435456.
TM_FLINK_PROPERTIES = """jobmanager.rpc.address: flink-jobmanager
jobmanager.rpc.port: 6123
blob.server.port: 6124
taskmanager.rpc.port: 6122
queryable-state.proxy.ports: 6125
taskmanager.numberOfTaskSlots: 4
parallelism.default: 4
state.backend.type: rocksdb
state.backend.incremental: true
state.backend.rocksdb.memory.managed: true
state.backend.rocksdb.localdir: /opt/flink/rocksdb
state.checkpoints.dir: s3://flink-checkpoints/sessions
execution.checkpointing.interval: 60s
metrics.reporter.prom.factory.class: org.apache.flink.metrics.prometheus.PrometheusReporterFactory
metrics.reporter.prom.port: 9249
taskmanager.memory.process.size: 4g
"""


def taskmanager_pod():
    """A pod of the taskmanager Deployment of Flink's session cluster. Its container was sized by
    hand (limit 3Gi for a 4g process) and FLINK_ENV_JAVA_OPTS_TM carries a -Xmx of its own."""
    container = {
        "name": "taskmanager",
        "image": "flink:1.18.1-scala_2.12-java11",
        "args": ["taskmanager"],
        "env": [
            {"name": "FLINK_PROPERTIES", "value": TM_FLINK_PROPERTIES},
            {"name": "FLINK_ENV_JAVA_OPTS_TM",
             "value": "-Xmx3g -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError"},
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"apiVersion": "v1",
                                                          "fieldPath": "status.podIP"}}},
            {"name": "TZ", "value": "UTC"},
        ],
        "ports": [{"containerPort": 6122, "name": "rpc", "protocol": "TCP"},
                  {"containerPort": 6125, "name": "query-state", "protocol": "TCP"},
                  {"containerPort": 9249, "name": "metrics", "protocol": "TCP"}],
        "resources": {"limits": {"cpu": "2", "memory": "3Gi"},
                      "requests": {"cpu": "2", "memory": "3Gi"}},
        "livenessProbe": {"tcpSocket": {"port": 6122}, "initialDelaySeconds": 30,
                          "periodSeconds": 60, "timeoutSeconds": 1, "successThreshold": 1,
                          "failureThreshold": 3},
        "securityContext": {"runAsUser": 9999, "runAsNonRoot": True,
                            "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"},
                         {"name": "rocksdb", "mountPath": "/opt/flink/rocksdb"},
                         {"name": "flink-logs", "mountPath": "/opt/flink/log"},
                         {"name": "s3-credentials", "mountPath": "/etc/s3", "readOnly": True}],
    }
    return {
        "kind": "Pod",
        "metadata": {
            "generateName": "flink-taskmanager-5b8d6c9f7-",
            "labels": {"app": "flink", "component": "taskmanager",
                       "pod-template-hash": "5b8d6c9f7", "app.kubernetes.io/part-of": "streaming",
                       "team": "data-platform"},
            "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9249"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                 "name": "flink-taskmanager-5b8d6c9f7",
                                 "uid": "8e2b7f4d-1c3a-4f5e-9b6d-0a7c2e4f6b81",
                                 "controller": True, "blockOwnerDeletion": True}],
        },
        "spec": {
            "containers": [container],
            "volumes": [{"name": "tmp", "emptyDir": {}},
                        {"name": "rocksdb", "emptyDir": {"sizeLimit": "20Gi"}},
                        {"name": "flink-logs", "emptyDir": {"sizeLimit": "1Gi"}},
                        {"name": "s3-credentials", "secret": {"secretName": "s3-credentials",
                                                              "defaultMode": 420}}],
            "serviceAccountName": "flink",
            "serviceAccount": "flink",
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "podAffinityTerm": {
                    "labelSelector": {"matchLabels": {"app": "flink", "component": "taskmanager"}},
                    "topologyKey": "kubernetes.io/hostname"}}]}},
        },
    }


def sidecar():
    return {
        "name": "log-shipper",
        "image": "fluent/fluent-bit:3.0.7",
        "args": ["--config", "/fluent-bit/etc/fluent-bit.conf"],
        "resources": {"limits": {"cpu": "100m", "memory": "64Mi"},
                      "requests": {"cpu": "50m", "memory": "32Mi"}},
        "volumeMounts": [{"name": "flink-logs", "mountPath": "/opt/flink/log", "readOnly": True}],
    }


def large_env(target_bytes):
    """Application settings passed as environment variables, as some platforms do."""
    env, size, i = [], 0, 0
    while size < target_bytes:
        value = "%s-%06d-%s" % (RNG.choice(["kafka", "s3", "jdbc", "schema-registry", "feature"]),
                               i, RNG.getrandbits(160).to_bytes(20, "big").hex())
        item = {"name": "APP_SETTING_%04d" % i, "value": value}
        env.append(item)
        size += len(json.dumps(item)) + 2
        i += 1
    return env


def review(pod):
    return corpus.review_of(corpus.api_server_defaults(pod, "flink"))


def fixtures():
    out = {}
    out["jm-5k"] = review(jobmanager_pod([jobmanager_container()]))
    small = jobmanager_container()
    small["env"] = small["env"][:1]
    small["env"][0] = {"name": "FLINK_PROPERTIES",
                       "value": "jobmanager.rpc.address: flink-jobmanager\n"
                                "jobmanager.memory.process.size: 1600m\n"}
    del small["livenessProbe"], small["readinessProbe"]
    out["two-container"] = review(jobmanager_pod([small, sidecar()]))
    big = jobmanager_pod([jobmanager_container(large_env(56 * 1024)), sidecar()],
                         {"deployment.example.com/config-digest": RNG.getrandbits(256).to_bytes(32, "big").hex()})
    out["jm-64k"] = review(big)
    cm = jobmanager_container()
    cm["env"] = [e for e in cm["env"] if e["name"] != "FLINK_PROPERTIES"]
    cm["volumeMounts"].append({"name": "flink-config", "mountPath": "/opt/flink/conf"})
    pod = jobmanager_pod([cm])
    pod["spec"]["volumes"].append({"name": "flink-config", "configMap": {"name": "bench-flink-config"}})
    out["jm-cm"] = review(pod)
    # New fixtures go here, after the others: the generator's draws for those above stay the same.
    out["tm-5k"] = review(taskmanager_pod())
    return out


CONFIGMAP = {
    "apiVersion": "v1", "kind": "ConfigMap",
    "metadata": {"name": "bench-flink-config"},
    "data": {"flink-conf.yaml": FLINK_PROPERTIES,
             "log4j-console.properties": "rootLogger.level = INFO\n"},
}


def main():
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    for name, body in fixtures().items():
        with open(os.path.join(outdir, name + ".json"), "w") as f:
            json.dump(body, f, separators=(",", ":"))
    with open(os.path.join(outdir, "configmap.json"), "w") as f:
        json.dump(CONFIGMAP, f)


if __name__ == "__main__":
    main()
