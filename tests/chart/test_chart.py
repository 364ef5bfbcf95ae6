"""The Helm chart offline: helm lint and helm template for each TLS mode, what the rendered objects
say, the values schema, the static install in manifests/, the chart README's values table, and
`flink-memory explain` on each example against its expected text.

Needs helm (make tools: build/tools/bin/helm, or FMW_HELM) and build/bin/flink-memory.
"""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHART = os.path.join(ROOT, "charts", "flink-memory-webhook")
HELM = os.environ.get("FMW_HELM") or os.path.join(
    os.environ.get("FMW_TOOLS_DIR") or os.path.join(ROOT, "build", "tools"), "bin", "helm")
CLI = os.path.join(ROOT, "build", "bin", "flink-memory")
EXAMPLES = os.path.join(ROOT, "manifests", "examples")
EXPECTED = os.path.join(ROOT, "tests", "chart", "expected")
NS = "fmw-system"
CA_B64 = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nnot checked by helm\n-----END CERTIFICATE-----\n").decode()

# The value sets a user would install with, one per TLS mode (and the development URL).
MODES = {
    "generate": [],
    "cert-manager": ["--set", "tls.mode=cert-manager"],
    "cert-manager-issuer": ["--set", "tls.mode=cert-manager", "--set", "tls.certManager.issuerRef.name=corp-ca",
                            "--set", "tls.certManager.issuerRef.kind=ClusterIssuer"],
    "secret": ["--set", "tls.mode=secret", "--set", "tls.secret.name=my-tls", "--set", f"tls.secret.caBundle={CA_B64}"],
    "url": ["--set", "webhook.url=https://127.0.0.1:26444/mutate", "--set", f"webhook.caBundle={CA_B64}"],
}


def helm(*args, check=True):
    p = subprocess.run([HELM, *args], capture_output=True, text=True, timeout=120)
    if check and p.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)}:\n{p.stdout}\n{p.stderr}")
    return p


def render(*values, kube="1.37.2", release="fmw", namespace=NS):
    out = helm("template", release, CHART, "--namespace", namespace, "--kube-version", kube, *values).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def one(docs, kind, name=None):
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"{len(found)} {kind} objects: {[d['metadata']['name'] for d in found]}"
    return found[0]


@pytest.mark.parametrize("mode", sorted(MODES))
def test_helm_lint(mode):
    p = helm("lint", CHART, "--strict", "--namespace", NS, "--kube-version", "1.37.2", *MODES[mode])
    assert "1 chart(s) linted, 0 chart(s) failed" in p.stdout


@pytest.mark.parametrize("mode", sorted(MODES))
def test_every_mode_renders_the_same_objects_and_policy(mode):
    docs = render(*MODES[mode])
    kinds = sorted(d["kind"] for d in docs)
    base = ["ClusterRole", "ClusterRoleBinding", "Deployment", "MutatingWebhookConfiguration",
            "PodDisruptionBudget", "Service", "ServiceAccount"]
    extra = {"generate": ["Secret"], "url": ["Secret"], "secret": [],
             "cert-manager": ["Certificate", "Certificate", "Issuer", "Issuer"],
             "cert-manager-issuer": ["Certificate"]}[mode]
    assert kinds == sorted(base + extra)
    mwc = one(docs, "MutatingWebhookConfiguration")
    jm_labels, tm_labels = default_labels()
    labels = jm_labels + tm_labels
    *pod_hooks, workloads = mwc["webhooks"]
    # One pod webhook per label convention of JobManager pods, one per convention of TaskManager
    # pods (both roles are sized by default), and nothing else.
    assert [w["name"].split(".")[0] for w in pod_hooks] == hook_names(len(jm_labels), len(tm_labels))
    assert [w["objectSelector"] for w in pod_hooks] == [{"matchLabels": l} for l in labels]
    assert jm_labels == [{"component": "jobmanager"}, {"app.kubernetes.io/component": "jobmanager"},
                         {"flink-deployment-type": "jobmanager"}]
    assert tm_labels == [{"component": "taskmanager"}, {"app.kubernetes.io/component": "taskmanager"},
                         {"flink-deployment-type": "taskmanager"}]
    pods = pod_hooks[0]
    assert pods["name"] == f"pods.fmw-flink-memory-webhook.{NS}.svc"
    assert pods["rules"] == [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                              "resources": ["pods"], "scope": "Namespaced"}]
    assert {r["apiGroups"][0]: (r["operations"], r["resources"]) for r in workloads["rules"]} == {
        "apps": (["CREATE", "UPDATE"], ["deployments", "statefulsets", "replicasets"]),
        "batch": (["CREATE", "UPDATE"], ["jobs", "cronjobs"])}
    for w in (*pod_hooks, workloads):
        assert w["failurePolicy"] == "Ignore" and w["timeoutSeconds"] == 5
        assert w["sideEffects"] == "None" and w["reinvocationPolicy"] == "IfNeeded"
        assert w["matchPolicy"] == "Equivalent" and w["admissionReviewVersions"] == ["v1"]
        assert w["namespaceSelector"] == {"matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system", NS]}]}
        assert [c["name"] for c in w["matchConditions"]] == (
            ["not-mirror-or-opted-out"] if w is not workloads else ["jobmanager-or-taskmanager-template"])
    assert workloads["objectSelector"] == {}
    # The workload condition names every convention, for templates and CronJobs' job templates.
    cond = workloads["matchConditions"][0]["expression"]
    for l in labels:
        for k, v in l.items():
            assert cond.count(f"['{k}'] == '{v}'") == 2, (k, cond)


def default_labels():
    with open(os.path.join(CHART, "values.yaml")) as f:
        webhook = yaml.safe_load(f)["webhook"]
    return webhook["jobManagerLabels"], webhook["taskManagerLabels"]


def hook_names(jm, tm):
    """The names of the pod webhooks for jm JobManager and tm TaskManager label sets."""
    return ([f"pods{'-%d' % i if i else ''}" for i in range(jm)] +
            [f"taskmanager-pods{'-%d' % i if i else ''}" for i in range(tm)])


# The workload condition of roles=[jobmanager] as the chart rendered it before TaskManagers were
# sized (commit 677168e): that setting must keep the JobManager behaviour byte for byte.
JOBMANAGER_TEMPLATE = (
    "has(object.spec) && ((has(object.spec.template) && has(object.spec.template.metadata) && "
    "has(object.spec.template.metadata.labels) && (('component' in object.spec.template.metadata.labels && "
    "object.spec.template.metadata.labels['component'] == 'jobmanager') || ('app.kubernetes.io/component' in "
    "object.spec.template.metadata.labels && object.spec.template.metadata.labels['app.kubernetes.io/component'] "
    "== 'jobmanager') || ('flink-deployment-type' in object.spec.template.metadata.labels && "
    "object.spec.template.metadata.labels['flink-deployment-type'] == 'jobmanager'))) || "
    "(has(object.spec.jobTemplate) && has(object.spec.jobTemplate.spec) && has(object.spec.jobTemplate.spec.template) "
    "&& has(object.spec.jobTemplate.spec.template.metadata) && has(object.spec.jobTemplate.spec.template.metadata.labels) "
    "&& (('component' in object.spec.jobTemplate.spec.template.metadata.labels && "
    "object.spec.jobTemplate.spec.template.metadata.labels['component'] == 'jobmanager') || "
    "('app.kubernetes.io/component' in object.spec.jobTemplate.spec.template.metadata.labels && "
    "object.spec.jobTemplate.spec.template.metadata.labels['app.kubernetes.io/component'] == 'jobmanager') || "
    "('flink-deployment-type' in object.spec.jobTemplate.spec.template.metadata.labels && "
    "object.spec.jobTemplate.spec.template.metadata.labels['flink-deployment-type'] == 'jobmanager'))))")


def test_roles_decide_the_pod_webhooks_and_the_workload_condition():
    jm_labels, tm_labels = default_labels()
    for roles, jm, tm, condition in (
            ("{jobmanager}", len(jm_labels), 0, "jobmanager-template"),
            ("{taskmanager}", 0, len(tm_labels), "taskmanager-template"),
            ("{taskmanager,jobmanager}", len(jm_labels), len(tm_labels), "jobmanager-or-taskmanager-template")):
        docs = render("--set", f"roles={roles}")
        args = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
        flag = ",".join(r for r in ("jobmanager", "taskmanager") if r in roles)
        assert [a for a in args if a.startswith("--roles")] == [f"--roles={flag}"], roles
        *pod_hooks, workloads = one(docs, "MutatingWebhookConfiguration")["webhooks"]
        assert [w["name"].split(".")[0] for w in pod_hooks] == hook_names(jm, tm), roles
        sets = jm_labels[:jm] + tm_labels[:tm]
        assert [w["objectSelector"] for w in pod_hooks] == [{"matchLabels": l} for l in sets], roles
        [cond] = workloads["matchConditions"]
        assert cond["name"] == condition, roles
        # Each label set of the roles sized, for a template and a CronJob's job template; no other.
        for l in jm_labels + tm_labels:
            for k, v in l.items():
                assert cond["expression"].count(f"['{k}'] == '{v}'") == (2 if l in sets else 0), (roles, k, v)
        if roles == "{jobmanager}":
            assert cond["expression"] == JOBMANAGER_TEMPLATE


def test_roles_jobmanager_renders_what_the_chart_rendered_before_taskmanagers():
    """roles=[jobmanager] with each webhook setting the chart had: every object as the default
    rendering of that setting, less the TaskManager pod webhooks and the TaskManager label sets in
    the workload condition; the Deployment differs only by --roles."""
    for extra in ([], ["--set", "workloads=off"], ["--set", "webhook.objectSelector.matchLabels.flink=jm"],
                  ["--set", "webhook.matchConditions.enabled=false"], ["--set", "mode=dry-run"]):
        both = render(*MODES["secret"], *extra)
        jm_only = render(*MODES["secret"], *extra, "--set", "roles={jobmanager}")
        assert [(d["kind"], d["metadata"]["name"]) for d in both] == [(d["kind"], d["metadata"]["name"]) for d in jm_only]
        for a, b in zip(both, jm_only):
            if a["kind"] == "Deployment":
                args = a["spec"]["template"]["spec"]["containers"][0]["args"]
                args[args.index("--roles=jobmanager,taskmanager")] = "--roles=jobmanager"
            if a["kind"] == "MutatingWebhookConfiguration":
                a["webhooks"] = [w for w in a["webhooks"] if not w["name"].startswith("taskmanager-pods")]
                for w in a["webhooks"]:
                    for c in w.get("matchConditions", []):
                        if c["name"] == "jobmanager-or-taskmanager-template":
                            c.update(name="jobmanager-template", expression=JOBMANAGER_TEMPLATE)
            assert a == b, (extra, a["kind"])


def notes(*values):
    """NOTES.txt as helm install prints it: helm template does not render it, so a copy of the
    chart carries it as a template of its own."""
    with tempfile.TemporaryDirectory() as d:
        chart = os.path.join(d, "chart")
        shutil.copytree(CHART, chart)
        src = os.path.join(chart, "templates", "NOTES.txt")
        with open(src) as f:
            text = f.read()
        os.remove(src)
        with open(os.path.join(chart, "templates", "_notes.tpl"), "w") as f:
            f.write('{{- define "fmw.test.notes" -}}' + text + "{{- end -}}")
        with open(os.path.join(chart, "templates", "notes.yaml"), "w") as f:
            f.write('text: {{ include "fmw.test.notes" . | toJson }}\n')
        out = helm("template", "fmw", chart, "--namespace", NS, *values, "--show-only", "templates/notes.yaml").stdout
    return yaml.safe_load(out)["text"]


def test_notes_say_which_roles_and_labels():
    text = notes()
    assert "It sizes JobManager and TaskManager pods in every namespace except kube-system, fmw-system." in text
    for label in ("component=jobmanager", "app.kubernetes.io/component=jobmanager", "flink-deployment-type=jobmanager",
                  "component=taskmanager", "app.kubernetes.io/component=taskmanager",
                  "flink-deployment-type=taskmanager"):
        assert f"\n  {label}\n" in text, label
    assert "roles=jobmanager,taskmanager mode=enforce" in text
    text = notes("--set", "roles={jobmanager}", "--set", "webhook.objectSelector.matchLabels.flink=jm")
    assert "It sizes JobManager pods in" in text and "\n  flink=jm\n" in text and "taskmanager" not in text


def test_tls_generate_secret_matches_the_ca_bundle_and_the_service_name():
    docs = render()
    secret = one(docs, "Secret")
    assert secret["type"] == "kubernetes.io/tls"
    mwc = one(docs, "MutatingWebhookConfiguration")
    for w in mwc["webhooks"]:
        assert w["clientConfig"]["caBundle"] == secret["data"]["ca.crt"]
        assert w["clientConfig"]["service"] == {"name": "fmw-flink-memory-webhook", "namespace": NS,
                                                "path": "/mutate", "port": 443}
    with tempfile.TemporaryDirectory() as d:
        for k in ("ca.crt", "tls.crt"):
            with open(os.path.join(d, k), "wb") as f:
                f.write(base64.b64decode(secret["data"][k]))
        v = subprocess.run(["openssl", "verify", "-CAfile", "ca.crt", "tls.crt"], cwd=d,
                           capture_output=True, text=True)
        assert v.returncode == 0, v.stdout + v.stderr
        text = subprocess.run(["openssl", "x509", "-in", "tls.crt", "-noout", "-ext", "subjectAltName"],
                              cwd=d, capture_output=True, text=True, check=True).stdout
    assert f"DNS:fmw-flink-memory-webhook.{NS}.svc" in text
    # The pods roll when the certificate changes: its checksum is in the pod template.
    dep = one(docs, "Deployment")
    assert len(dep["spec"]["template"]["metadata"]["annotations"]["checksum/tls"]) == 16
    # Only the serving pair reaches the pod, not the CA's key.
    vol = dep["spec"]["template"]["spec"]["volumes"][0]
    assert vol["secret"] == {"secretName": "fmw-flink-memory-webhook-tls",
                             "items": [{"key": "tls.crt", "path": "tls.crt"}, {"key": "tls.key", "path": "tls.key"}]}


# Fields whose value the API server reads as a string, wherever they are in an object.
STRING_FIELDS = {"name", "namespace", "secretName", "serviceAccountName", "priorityClassName", "caBundle",
                 "commonName", "imagePullPolicy", "failurePolicy", "matchPolicy", "reinvocationPolicy",
                 "duration", "renewBefore"}


def non_strings(node, path=""):
    """Where a string field (or a label, an annotation, a Secret's data, a DNS name) is not a string."""
    if isinstance(node, list):
        return [w for i, v in enumerate(node) for w in non_strings(v, f"{path}[{i}]")]
    if not isinstance(node, dict):
        return []
    found = []
    for k, v in node.items():
        here = f"{path}.{k}"
        if k in ("labels", "annotations", "data", "matchLabels") and isinstance(v, dict):
            found += [f"{here}.{lk}={lv!r}" for lk, lv in v.items() if not isinstance(lv, str)]
        elif k == "dnsNames":
            found += [f"{here}={d!r}" for d in v if not isinstance(d, str)]
        elif k in STRING_FIELDS and not isinstance(v, (str, dict, list)):
            found.append(f"{here}={v!r}")
        else:
            found += non_strings(v, here)
    return found


@pytest.mark.parametrize("mode", sorted(MODES))
def test_names_that_look_like_numbers_stay_strings(mode):
    """A release, namespace or name made of digits is valid in Kubernetes; rendered unquoted, YAML reads
    it as a number and the API server refuses the object ("cannot unmarshal number ... of type string")."""
    docs = render(*MODES[mode], "--set-string", "rbac.namespaces={2025}", "--set-string", "priorityClassName=300",
                  "--set-string", "podAnnotations.rev=7", release="1234", namespace="2024")
    docs += render(*MODES[mode], "--set-string", "fullnameOverride=5678", release="1234", namespace="2024")
    assert [w for d in docs for w in non_strings(d, d["kind"])] == []
    dep = one(docs, "Deployment", "1234-flink-memory-webhook")
    assert dep["metadata"]["namespace"] == "2024"
    assert dep["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/instance"] == "1234"
    assert one(docs, "Deployment", "5678")["spec"]["template"]["spec"]["serviceAccountName"] == "5678"


def test_tls_cert_manager_injects_the_ca():
    docs = render(*MODES["cert-manager"])
    mwc = one(docs, "MutatingWebhookConfiguration")
    assert mwc["metadata"]["annotations"] == {"cert-manager.io/inject-ca-from": f"{NS}/fmw-flink-memory-webhook"}
    assert all("caBundle" not in w["clientConfig"] for w in mwc["webhooks"])
    cert = one(docs, "Certificate", "fmw-flink-memory-webhook")
    assert cert["spec"]["secretName"] == "fmw-flink-memory-webhook-tls"
    assert f"fmw-flink-memory-webhook.{NS}.svc" in cert["spec"]["dnsNames"]
    assert cert["spec"]["issuerRef"] == {"name": "fmw-flink-memory-webhook-ca", "kind": "Issuer"}
    assert one(docs, "Certificate", "fmw-flink-memory-webhook-ca")["spec"]["isCA"] is True
    given = one(render(*MODES["cert-manager-issuer"]), "Certificate")
    assert given["spec"]["issuerRef"] == {"name": "corp-ca", "kind": "ClusterIssuer"}


def test_tls_existing_secret_and_development_url():
    docs = render(*MODES["secret"])
    assert one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"] == "my-tls"
    assert all(w["clientConfig"]["caBundle"] == CA_B64 for w in one(docs, "MutatingWebhookConfiguration")["webhooks"])
    docs = render(*MODES["url"])
    for w in one(docs, "MutatingWebhookConfiguration")["webhooks"]:
        assert w["clientConfig"] == {"url": "https://127.0.0.1:26444/mutate", "caBundle": CA_B64}
    p = helm("template", "fmw", CHART, "--set", "webhook.url=https://127.0.0.1:1/mutate", check=False)
    assert p.returncode != 0 and "webhook.caBundle is required with webhook.url" in p.stderr
    p = helm("template", "fmw", CHART, "--set", "tls.mode=secret", "--set", "tls.secret.name=x", check=False)
    assert p.returncode != 0 and "tls.secret.caBundle is required" in p.stderr


def test_deployment_is_restricted_and_highly_available():
    docs = render("--set", "priorityClassName=platform-critical")
    dep = one(docs, "Deployment")
    spec = dep["spec"]["template"]["spec"]
    assert dep["spec"]["replicas"] == 2
    assert spec["priorityClassName"] == "platform-critical"
    assert spec["securityContext"] == {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532,
                                       "seccompProfile": {"type": "RuntimeDefault"}}
    c = spec["containers"][0]
    assert c["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]},
                                    "seccompProfile": {"type": "RuntimeDefault"}}
    assert c["resources"] == {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "160Mi"}}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert "--mode=enforce" in c["args"] and "--on-invalid=deny" in c["args"]
    anti = spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
    assert anti["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert spec["topologySpreadConstraints"][0]["topologyKey"] == "topology.kubernetes.io/zone"
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"] == dep["spec"]["selector"]
    assert not [d for d in render("--set", "replicaCount=1") if d["kind"] == "PodDisruptionBudget"]


def test_network_policy():
    """Off by default. On: the admission port only from the API server's CIDRs, the health port
    only from the metrics peers (the kubelet's probes come from the node, always allowed); without
    CIDRs the admission port stays open rather than guessing the API server's address."""
    assert not [d for d in render() if d["kind"] == "NetworkPolicy"]
    peer = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    docs = render("--set", "networkPolicy.enabled=true",
                  "--set", "networkPolicy.apiServerCIDRs={10.0.0.0/8,192.0.2.10/32}",
                  "--set-json", "networkPolicy.metricsFrom=" + json.dumps([peer]))
    dep, np = one(docs, "Deployment"), one(docs, "NetworkPolicy")
    assert np["spec"]["podSelector"] == dep["spec"]["selector"]
    assert np["spec"]["policyTypes"] == ["Ingress"]
    https, health = np["spec"]["ingress"]
    assert https["ports"] == [{"port": "https", "protocol": "TCP"}]
    assert https["from"] == [{"ipBlock": {"cidr": "10.0.0.0/8"}}, {"ipBlock": {"cidr": "192.0.2.10/32"}}]
    assert health == {"ports": [{"port": "health", "protocol": "TCP"}], "from": [peer]}
    ports = {p["name"] for p in dep["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert {"https", "health"} <= ports
    [only] = one(render("--set", "networkPolicy.enabled=true"), "NetworkPolicy")["spec"]["ingress"]
    assert only == {"ports": [{"port": "https", "protocol": "TCP"}]}


def test_behaviour_values_become_flags():
    docs = render("--set", "mode=dry-run", "--set", "onInvalidConfig=warn", "--set", "workloads=patch",
                  "--set", "defaultFlinkVersion=1.18", "--set", "requests=keep-lower", "--set", "logLevel=debug",
                  "--set", "configMapLookup.timeoutMs=1500")
    args = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    for flag in ("--mode=dry-run", "--on-invalid=warn", "--workloads=patch", "--default-flink-version=1.18",
                 "--requests=keep-lower", "--log-level=debug", "--lookup-timeout-ms=1500"):
        assert flag in args
    # Every flag the chart passes is one the server knows.
    help_text = subprocess.run([os.path.join(ROOT, "build", "bin", "flink-memory-webhook"), "--help"],
                               capture_output=True, text=True).stdout
    for a in args:
        assert a.split("=")[0] in help_text, a
    assert "--roles=jobmanager,taskmanager" in one(render(), "Deployment")["spec"]["template"]["spec"][
        "containers"][0]["args"]
    # workloads=off: the API server does not call the webhook for workloads at all.
    mwc = one(render("--set", "workloads=off"), "MutatingWebhookConfiguration")
    assert [w["name"].split(".")[0] for w in mwc["webhooks"]] == [
        "pods", "pods-1", "pods-2", "taskmanager-pods", "taskmanager-pods-1", "taskmanager-pods-2"]
    # A selector of the user's: one pod webhook with it.
    mwc = one(render("--set", "webhook.objectSelector.matchLabels.flink=jm"), "MutatingWebhookConfiguration")
    assert [(w["name"].split(".")[0], w["objectSelector"]) for w in mwc["webhooks"]] == [
        ("pods", {"matchLabels": {"flink": "jm"}}), ("workloads", {})]


def test_sizing_value_and_namespace_label():
    args = one(render("--set", "sizing=from-limit"), "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--sizing=from-limit" in args
    # from-config is the server's default: no flag, so the default render is unchanged.
    assert not any(a.startswith("--sizing") for a in one(render(), "Deployment")["spec"]["template"]["spec"][
        "containers"][0]["args"])
    plain = one(render(), "MutatingWebhookConfiguration")["webhooks"]
    mwc = one(render("--set", "webhook.sizingNamespaceLabel=true"), "MutatingWebhookConfiguration")["webhooks"]
    # Every webhook has a twin per label value, in that order, called at its own path.
    assert len(mwc) == 3 * len(plain)
    label = "flink-memory-webhook/sizing"
    for i, w in enumerate(plain):
        base, limit, request = mwc[3 * i:3 * i + 3]
        assert base["name"] == w["name"]
        assert limit["name"] == "from-limit-" + w["name"] and request["name"] == "from-request-" + w["name"]
        assert base["clientConfig"]["service"]["path"] == "/mutate"
        assert limit["clientConfig"]["service"]["path"] == "/mutate/from-limit"
        assert request["clientConfig"]["service"]["path"] == "/mutate/from-request"
        exprs = w["namespaceSelector"]["matchExpressions"]
        assert base["namespaceSelector"]["matchExpressions"] == exprs + [
            {"key": label, "operator": "NotIn", "values": ["from-limit", "from-request"]}]
        assert limit["namespaceSelector"]["matchExpressions"] == exprs + [
            {"key": label, "operator": "In", "values": ["from-limit"]}]
        assert request["namespaceSelector"]["matchExpressions"] == exprs + [
            {"key": label, "operator": "In", "values": ["from-request"]}]
        for twin in (base, limit, request):
            rest = {k: v for k, v in twin.items() if k not in ("name", "clientConfig", "namespaceSelector")}
            assert rest == {k: v for k, v in w.items() if k not in ("name", "clientConfig", "namespaceSelector")}
    # The development URL gets the same suffix.
    mwc = one(render("--set", "webhook.sizingNamespaceLabel=true", "--set", "webhook.url=https://10.0.0.1:8443/mutate",
                     "--set", "webhook.caBundle=Y2E="),
              "MutatingWebhookConfiguration")["webhooks"]
    assert [w["clientConfig"]["url"] for w in mwc[:3]] == [
        "https://10.0.0.1:8443/mutate", "https://10.0.0.1:8443/mutate/from-limit", "https://10.0.0.1:8443/mutate/from-request"]


def test_selectors_and_exclusions():
    mwc = one(render("--set", "webhook.namespaceSelector.matchLabels.flink=enabled",
                     "--set", "webhook.excludeNamespaces={kube-system,monitoring}"), "MutatingWebhookConfiguration")
    assert mwc["webhooks"][0]["namespaceSelector"] == {
        "matchLabels": {"flink": "enabled"},
        "matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn",
                              "values": ["kube-system", "monitoring", NS]}]}


def test_match_conditions_follow_the_cluster_version():
    for kube, present in (("1.29.4", False), ("1.30.0", True), ("1.37.2", True)):
        mwc = one(render(kube=kube), "MutatingWebhookConfiguration")
        assert all(("matchConditions" in w) == present for w in mwc["webhooks"]), kube
    mwc = one(render("--set", "webhook.matchConditions.enabled=false"), "MutatingWebhookConfiguration")
    assert all("matchConditions" not in w for w in mwc["webhooks"])


def test_rbac_reads_configmaps_only():
    role = one(render(), "ClusterRole")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}]
    docs = render("--set", "rbac.namespaces={flink-a,flink-b}")
    assert not [d for d in docs if d["kind"].startswith("Cluster")]
    roles = [d for d in docs if d["kind"] == "Role"]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["flink-a", "flink-b"]
    assert all(r["rules"] == role["rules"] for r in roles)
    bindings = [d for d in docs if d["kind"] == "RoleBinding"]
    assert all(b["subjects"] == [{"kind": "ServiceAccount", "name": "fmw-flink-memory-webhook", "namespace": NS}]
               for b in bindings)


@pytest.mark.parametrize("values,message", [
    (["--set", "mode=patch"], "/mode"),
    (["--set", "webhook.timeoutSeconds=31"], "/webhook/timeoutSeconds"),
    (["--set", "webhook.failurePolicy=Retry"], "/webhook/failurePolicy"),
    (["--set", "webhook.url=http://127.0.0.1/mutate"], "/webhook/url"),
    (["--set", "tls.mode=self-signed"], "/tls/mode"),
    (["--set", "defaultFlinkVersion=3"], "/defaultFlinkVersion"),
    (["--set", "nosuchvalue=1"], "nosuchvalue"),
    (["--set", "roles=jobmanager"], "/roles"),
    (["--set", "roles={jobmanager,historyserver}"], "/roles/1"),
    (["--set", "roles={taskmanager,taskmanager}"], "/roles"),
    (["--set-json", "roles=[]"], "/roles"),
    (["--set-json", "webhook.taskManagerLabels=[{}]"], "/webhook/taskManagerLabels/0"),
])
def test_schema_rejects_bad_values(values, message):
    p = helm("template", "fmw", CHART, *values, check=False)
    assert p.returncode != 0 and message in p.stderr, p.stderr


def test_static_install_is_the_rendered_chart():
    with open(os.path.join(ROOT, "manifests", "install.yaml")) as f:
        committed = f.read()
    rendered = subprocess.run([os.path.join(ROOT, "tests", "chart", "render-install.sh")], capture_output=True,
                              text=True, check=True, env={**os.environ, "FMW_HELM": HELM}).stdout
    assert committed == rendered, "manifests/install.yaml is stale: run make manifests"
    docs = [d for d in yaml.safe_load_all(committed) if d]
    ns = one(docs, "Namespace")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_chart_readme_values_table_is_current():
    p = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "chart", "readme.py"), "--check"],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


EXAMPLE_NAMES = sorted(f[:-5] for f in os.listdir(EXAMPLES) if f.endswith(".yaml"))


def test_every_example_has_expected_text():
    assert EXAMPLE_NAMES == sorted(f[:-4] for f in os.listdir(EXPECTED) if f.endswith(".txt"))
    assert len(EXAMPLE_NAMES) == 3


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_explain_example(name):
    p = subprocess.run([CLI, "explain", "-f", os.path.join(EXAMPLES, name + ".yaml")], capture_output=True, text=True)
    with open(os.path.join(EXPECTED, name + ".txt")) as f:
        assert p.stdout == f.read()
    assert p.returncode == 0, p.stderr


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_explain_with_the_configmap_in_its_own_file(name):
    """kubectl flink-memory explain -f workload.yaml --configmap cm.yaml gives the same answer as
    one file holding both."""
    with open(os.path.join(EXAMPLES, name + ".yaml")) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    with tempfile.TemporaryDirectory() as d:
        cms, rest = os.path.join(d, "cm.yaml"), os.path.join(d, "workload.yaml")
        with open(cms, "w") as f:
            yaml.safe_dump_all([x for x in docs if x["kind"] == "ConfigMap"], f)
        with open(rest, "w") as f:
            yaml.safe_dump_all([x for x in docs if x["kind"] != "ConfigMap"], f)
        p = subprocess.run([CLI, "explain", "-f", rest, "--configmap", cms], capture_output=True, text=True)
    with open(os.path.join(EXPECTED, name + ".txt")) as f:
        assert p.stdout == f.read()
