#!/usr/bin/env bash
# Smoke test of the local control plane; runs under with-cluster.sh (build/cluster/env sourced).
# Checks that the real components do what the webhook's tests rely on: the apiserver stores and
# serves objects, the controller manager turns a Deployment into a ReplicaSet and a Pod, a
# server-side dry run stores nothing, PodSecurity admission is on, and the apiserver calls a
# mutating webhook registered with a loopback URL.
set -uo pipefail
: "${FMW_KUBECTL:?source build/cluster/env first (tests/cluster/with-cluster.sh does)}"
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

command -v jq >/dev/null || die "jq is not installed (make deps installs it)"
kubectl() { "$FMW_KUBECTL" "$@"; }
helm() { "$FMW_HELM" "$@"; }
ns=fmw-smoke-$$
webhook=fmw-smoke-$$
work=$(mktemp -d)
passed=0
failed=0

cleanup() {
    kubectl delete mutatingwebhookconfiguration "$webhook" --ignore-not-found >/dev/null 2>&1
    kubectl delete namespace "$ns" --ignore-not-found --wait=false >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT

# check DESCRIPTION COMMAND...: one test line; the command's output is shown only on failure.
check() {
    local what=$1
    shift
    if "$@" >"$work/out" 2>&1; then
        passed=$((passed + 1))
        echo "ok - $what"
    else
        failed=$((failed + 1))
        echo "not ok - $what"
        sed 's/^/    /' "$work/out" | tail -n 20
    fi
}

# eventually SECONDS COMMAND...: retries COMMAND every half second until it succeeds.
eventually() {
    local limit=$1 i
    shift
    for ((i = 0; i < limit * 2; i++)); do
        "$@" && return 0
        sleep 0.5
    done
    echo "still failing after ${limit}s: $*"
    "$@"
}

readyz_ok() { [ "$(kubectl get --raw /readyz)" = ok ]; }
check "apiserver /readyz says ok" readyz_ok

versions_match() {
    local server
    server=$(kubectl version -o json | jq -r .serverVersion.gitVersion)
    echo "server $server"
    [[ $server == v1.* ]] && [ "$server" = "$(kubectl version --client -o json | jq -r .clientVersion.gitVersion)" ]
}
check "kubectl and kube-apiserver are the same release" versions_match

default_sa() { kubectl -n "$ns" get serviceaccount default -o name; }
make_namespace() {
    kubectl create namespace "$ns" &&
        kubectl label namespace "$ns" fmw-smoke=yes &&
        eventually 60 default_sa # the controller manager's serviceaccount controller
}
check "namespace $ns gets its default service account" make_namespace

make_configmap() {
    kubectl -n "$ns" create configmap flink-config \
        --from-literal=config.yaml='jobmanager.memory.process.size: 1600m' &&
        [ "$(kubectl -n "$ns" get configmap flink-config -o jsonpath='{.data.config\.yaml}')" = \
            'jobmanager.memory.process.size: 1600m' ]
}
check "a ConfigMap is stored and read back" make_configmap

cat >"$work/deployment.yaml" <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: jobmanager
spec:
  replicas: 1
  selector:
    matchLabels: {app: smoke-jobmanager}
  template:
    metadata:
      labels: {app: smoke-jobmanager}
    spec:
      containers:
      - name: jobmanager
        image: flink:2.1
        args: [jobmanager]
        volumeMounts:
        - {name: flink-config, mountPath: /opt/flink/conf}
      volumes:
      - name: flink-config
        configMap: {name: flink-config}
EOF
pod_of_deployment() {
    local rs
    rs=$(kubectl -n "$ns" get pods -l app=smoke-jobmanager \
        -o jsonpath='{.items[0].metadata.ownerReferences[0].kind}/{.items[0].metadata.ownerReferences[0].name} {.items[0].status.phase}')
    [[ $rs == ReplicaSet/jobmanager-*" Pending" ]] || return 1
    rs=${rs%% *}
    [ "$(kubectl -n "$ns" get "replicaset/${rs#ReplicaSet/}" -o jsonpath='{.metadata.ownerReferences[0].name}')" = jobmanager ]
}
make_deployment() {
    kubectl -n "$ns" apply -f "$work/deployment.yaml" && eventually 60 pod_of_deployment
}
check "a Deployment gets a ReplicaSet and a Pending Pod from the controller manager" make_deployment

cat >"$work/dry-run.yaml" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: dry-run-only
data:
  config.yaml: "jobmanager.memory.process.size: 2g"
---
apiVersion: v1
kind: Pod
metadata:
  name: dry-run-only
spec:
  containers:
  - name: jobmanager
    image: flink:2.1
EOF
dry_run_stores_nothing() {
    kubectl -n "$ns" apply --dry-run=server -f "$work/dry-run.yaml" -o yaml >"$work/dry.out" || return 1
    # Admission ran: the ServiceAccount plugin gave the pod its token volume.
    if ! grep -q 'serviceAccountName: default' "$work/dry.out" ||
        ! grep -q 'kube-api-access-' "$work/dry.out"; then
        cat "$work/dry.out"
        return 1
    fi
    ! kubectl -n "$ns" get configmap/dry-run-only pod/dry-run-only 2>&1 | grep -v NotFound
}
check "apply --dry-run=server returns the admitted objects and stores nothing" dry_run_stores_nothing

cat >"$work/privileged.yaml" <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: privileged
spec:
  containers:
  - name: c
    image: flink:2.1
    securityContext: {privileged: true}
EOF
pod_security_denies() {
    kubectl label namespace "$ns" pod-security.kubernetes.io/enforce=baseline || return 1
    if kubectl -n "$ns" apply --dry-run=server -f "$work/privileged.yaml" >"$work/psa.out" 2>&1 ||
        ! grep -q 'violates PodSecurity "baseline' "$work/psa.out"; then
        cat "$work/psa.out"
        return 1
    fi
    kubectl label namespace "$ns" pod-security.kubernetes.io/enforce-
}
check "PodSecurity admission denies a privileged pod in a baseline namespace" pod_security_denies

mkdir -p "$work/chart/templates"
cat >"$work/chart/Chart.yaml" <<'EOF'
apiVersion: v2
name: fmw-smoke
version: 0.1.0
EOF
cat >"$work/chart/templates/configmap.yaml" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-flink-config
data:
  config.yaml: "jobmanager.memory.process.size: {{ .Values.processSize }}"
EOF
helm_installs() {
    helm install smoke "$work/chart" -n "$ns" --set processSize=1g || return 1
    [ "$(kubectl -n "$ns" get configmap smoke-flink-config -o jsonpath='{.data.config\.yaml}')" = \
        'jobmanager.memory.process.size: 1g' ] || return 1
    helm uninstall smoke -n "$ns" || return 1
    ! kubectl -n "$ns" get configmap smoke-flink-config
}
check "helm installs and uninstalls a chart" helm_installs

# A mutating webhook on a loopback port where nothing listens, failurePolicy Fail, for this
# namespace only: the apiserver must try to call it and refuse the pod.
dead_port=$((port_base + 1))
cat >"$work/webhook.yaml" <<EOF
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: $webhook
webhooks:
- name: smoke.flink-memory-webhook.local
  clientConfig:
    url: https://127.0.0.1:$dead_port/mutate
    caBundle: $(base64 -w0 <"$FMW_CLUSTER_CA")
  rules:
  - {apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}
  namespaceSelector:
    matchLabels: {fmw-smoke: "yes"}
  failurePolicy: Fail
  sideEffects: None
  admissionReviewVersions: [v1]
  timeoutSeconds: 5
EOF
webhook_refuses() {
    ! kubectl -n "$ns" apply --dry-run=server -f "$work/dry-run.yaml" >"$work/wh.out" 2>&1 &&
        grep -q "failed calling webhook \"smoke.flink-memory-webhook.local\"" "$work/wh.out"
}
webhook_called() {
    if port_in_use "$dead_port"; then
        echo "port $dead_port is in use; this check needs it free"
        return 1
    fi
    kubectl apply -f "$work/webhook.yaml" || return 1
    # The apiserver picks up webhook configurations from a watch, within a second or so.
    eventually 20 webhook_refuses || { cat "$work/wh.out"; return 1; }
    kubectl delete mutatingwebhookconfiguration "$webhook"
}
check "the apiserver calls a mutating webhook at a loopback URL (failurePolicy Fail)" webhook_called

echo "cluster-smoke: $passed passed, $failed failed"
[ $failed -eq 0 ]
