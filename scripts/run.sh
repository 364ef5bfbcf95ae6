#!/usr/bin/env bash
# run.sh [--once]: `make run`. Starts the local control plane (unless one is up), runs the webhook
# as a local process, installs the Helm chart pointed at it (webhook.url: there are no nodes, so
# the chart's own pods stay Pending), applies the Flink examples from manifests/examples, and
# prints what the JobManager pods received. Then it keeps serving until Ctrl-C, and stops what it
# started. --once (or FMW_RUN_ONCE=1) stops right after the report and exits non-zero unless every
# JobManager pod was sized by the webhook: the form the tests run.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=tests/cluster/lib.sh
source "$root/tests/cluster/lib.sh"

once=${FMW_RUN_ONCE:-0}
case "${1:-}" in
--once) once=1 ;;
"") ;;
*)
    echo "usage: scripts/run.sh [--once]" >&2
    exit 2
    ;;
esac

run_dir=$root/build/run
release=flink-memory-webhook
release_ns=flink-memory-webhook
demo_ns=flink-demo
webhook_port=${FMW_RUN_PORT:-$((port_base + 444))}
health_port=${FMW_RUN_HEALTH_PORT:-$((port_base + 480))}
webhook_bin=$root/build/bin/flink-memory-webhook
examples=(session-cluster-flink-1.18 application-mode-flink-2.1 custom-command-jobmanager)

step() { printf '\n==> %s\n' "$*"; }
fail() {
    echo "run: $*" >&2
    exit 1
}

started_cluster=no
webhook_pid=
installed=no
cleaned=no
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    [ "$cleaned" = yes ] && return
    cleaned=yes
    # Ctrl-C reaches the whole foreground process group: a pipe reader (make run | tee) may be
    # gone already, and a write must not kill this cleanup half way.
    trap '' INT TERM PIPE
    step "Stopping what make run started"
    if [ "$installed" = yes ]; then
        "$FMW_KUBECTL" delete configmap -n default -l app.kubernetes.io/part-of=flink-memory-webhook-demo \
            >/dev/null 2>&1
        "$FMW_HELM" uninstall "$release" -n "$release_ns" >/dev/null 2>&1 &&
            echo "helm release $release uninstalled"
        "$FMW_KUBECTL" delete namespace "$demo_ns" "$release_ns" --ignore-not-found --wait=false \
            >/dev/null 2>&1
    fi
    if [ -n "$webhook_pid" ] && kill -0 "$webhook_pid" 2>/dev/null; then
        kill -TERM "$webhook_pid"
        wait "$webhook_pid" 2>/dev/null
        echo "webhook stopped (log: ${run_dir#"$root"/}/webhook.log)"
    fi
    case $started_cluster in
    yes) "$root/tests/cluster/down.sh" ;;
    before) echo "the control plane was already running before make run; it is left running" ;;
    esac
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

command -v jq >/dev/null || fail "jq is missing (make deps installs it)"
[ -x "$webhook_bin" ] || fail "$webhook_bin is missing: run 'make all'"

step "Local control plane (etcd, kube-apiserver, kube-controller-manager on 127.0.0.1)"
if cluster_running; then
    echo "already running at $apiserver_url: using it"
    started_cluster=before
else
    "$root/tests/cluster/up.sh" || fail "the control plane did not start (logs: build/cluster/logs)"
    started_cluster=yes
fi
# shellcheck source=/dev/null
source "$cluster_dir/env"
kubectl() { "$FMW_KUBECTL" "$@"; }
helm() { "$FMW_HELM" "$@"; }

step "Webhook on https://127.0.0.1:$webhook_port/mutate (a local process, like the e2e tests)"
for p in "$webhook_port" "$health_port"; do
    port_in_use "$p" && fail "port $p is taken; set FMW_RUN_PORT / FMW_RUN_HEALTH_PORT to free ones"
done
mkdir -p "$run_dir/pki"
(
    cd "$run_dir/pki" &&
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
            -keyout ca.key -out ca.crt -subj /CN=flink-memory-webhook-run-ca &&
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout tls.key \
            -out tls.csr -subj /CN=127.0.0.1 &&
        printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >ext.cnf &&
        openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
            -out tls.crt -extfile ext.cnf
) >"$run_dir/openssl.log" 2>&1 || fail "openssl failed: $(cat "$run_dir/openssl.log")"
"$webhook_bin" --tls-cert-file "$run_dir/pki/tls.crt" --tls-key-file "$run_dir/pki/tls.key" \
    --kubeconfig "${KUBECONFIG:?}" --listen-address 127.0.0.1 --port "$webhook_port" \
    --health-port "$health_port" --drain-delay-ms 0 --cache-ttl-ms 2000 \
    >"$run_dir/webhook.log" 2>&1 &
webhook_pid=$!
for _ in $(seq 100); do
    [ "$(curl -s --max-time 1 "http://127.0.0.1:$health_port/readyz")" != "" ] && break
    kill -0 "$webhook_pid" 2>/dev/null || fail "the webhook exited: $(tail -n 5 "$run_dir/webhook.log")"
    sleep 0.1
done
curl -sf --max-time 1 "http://127.0.0.1:$health_port/readyz" >/dev/null ||
    fail "the webhook is not ready: $(tail -n 5 "$run_dir/webhook.log")"
echo "ready; health, readiness and metrics on http://127.0.0.1:$health_port/{healthz,readyz,metrics}"

# A namespace an earlier run left terminating takes no new objects: let it go first.
for ns in "$release_ns" "$demo_ns"; do
    for _ in $(seq 240); do
        phase=$(kubectl get namespace "$ns" -o jsonpath='{.status.phase}' 2>/dev/null) || break
        [ "$phase" = Terminating ] || break
        sleep 0.5
    done
done

step "helm install $release charts/flink-memory-webhook (webhook.url points at the local process)"
helm upgrade --install "$release" "$root/charts/flink-memory-webhook" -n "$release_ns" \
    --create-namespace --set "webhook.url=https://127.0.0.1:$webhook_port/mutate" \
    --set "webhook.caBundle=$(base64 -w0 "$run_dir/pki/ca.crt")" >"$run_dir/helm.log" 2>&1 ||
    fail "helm install failed: $(cat "$run_dir/helm.log")"
installed=yes
sed -n '1,6p' "$run_dir/helm.log"
kubectl get mutatingwebhookconfiguration "$release" \
    -o jsonpath='{range .webhooks[*]}webhook {.name}: {.clientConfig.url}{"\n"}{end}'

# The API server watches webhook configurations: wait until it calls ours.
kubectl create namespace "$demo_ns" >/dev/null 2>&1 || true
probe='{"apiVersion":"v1","kind":"Pod","metadata":{"name":"probe","labels":{"component":"jobmanager"}},
 "spec":{"containers":[{"name":"jobmanager","image":"flink:1.18.1","args":["jobmanager"]}]}}'
called=no
for _ in $(seq 60); do
    if kubectl apply --dry-run=server -n "$demo_ns" -o json -f - <<<"$probe" 2>/dev/null |
        jq -e '.metadata.annotations["flink-memory-webhook/resolved"]' >/dev/null; then
        called=yes
        break
    fi
    sleep 0.5
done
[ $called = yes ] || fail "the API server never called the webhook (log: $run_dir/webhook.log)"
echo "the API server calls the webhook"

step "kubectl apply -n $demo_ns -f manifests/examples/ (Flink's own manifests, sized by hand)"
for ex in "${examples[@]}"; do
    echo "\$ kubectl apply -f manifests/examples/$ex.yaml"
    kubectl apply -n "$demo_ns" -f "$root/manifests/examples/$ex.yaml" 2>&1 | sed 's/^/  /'
done

# The examples' ConfigMaps also go to namespace default, where no example runs: there, a
# `kubectl apply --dry-run=server -f manifests/examples/X.yaml` creates (rather than updates) the
# pod, and the webhook finds the ConfigMap the pod mounts.
for ex in "${examples[@]}"; do
    kubectl create --dry-run=client -o json -f "$root/manifests/examples/$ex.yaml"
done | jq -s '{apiVersion: "v1", kind: "List", items: [.[] | (.items // [.])[] |
    select(.kind == "ConfigMap") | .metadata.labels["app.kubernetes.io/part-of"] = "flink-memory-webhook-demo"]}' |
    kubectl apply -n default -f - >/dev/null || fail "could not copy the ConfigMaps to namespace default"

step "The JobManager pods, as the API server stored them"
echo "(waiting for the controller manager to create them from the Deployment and the Job)"
pods_json=
for _ in $(seq 120); do
    pods_json=$(kubectl get pods -n "$demo_ns" -l component=jobmanager -o json)
    [ "$(jq '.items | length' <<<"$pods_json")" -ge ${#examples[@]} ] && break
    sleep 0.5
done
# One block per pod: the JobManager container's memory, the JVM flags the webhook wrote (the
# variable that wins on the java command line) and Flink's resolved sizes from the annotation.
jq -r '
  .items | sort_by(.metadata.name)[] |
  (.metadata.annotations["flink-memory-webhook/resolved"] // "null" | fromjson) as $r |
  (.spec.containers[] | select(.name == "jobmanager" or .name == "flink")) as $c |
  "pod \(.metadata.name) (container \($c.name))",
  "  memory limit:   \($c.resources.limits.memory // "unset")",
  "  memory request: \($c.resources.requests.memory // "unset")",
  (($c.env // [])[] | select(.name == "FLINK_ENV_JAVA_OPTS_JM" or .name == "_JAVA_OPTIONS") |
    "  \(.name)=\(.value)"),
  (if $r then
    "  Flink \($r.flinkVersion): heap \($r.heap / 1048576 | floor)Mi, off-heap \($r.offHeap / 1048576 | floor)Mi, metaspace \($r.metaspace / 1048576 | floor)Mi, overhead \($r.overhead / 1048576 | floor)Mi = \($r.totalProcess)",
    "  JVM flags Flink starts it with: \($r.jvmArgs)",
    "  configuration: \($r.source)"
   else "  NOT sized by the webhook (no flink-memory-webhook/resolved annotation)" end)
' <<<"$pods_json"
sized=$(jq '[.items[] | select(.metadata.annotations["flink-memory-webhook/resolved"])] | length' \
    <<<"$pods_json")
total=$(jq '.items | length' <<<"$pods_json")
kubectl get pods -n "$demo_ns" -l component=taskmanager -o json | jq -r '
  .items | sort_by(.metadata.name)[] |
  "pod \(.metadata.name): a TaskManager, left as written (limit \(.spec.containers[0].resources.limits.memory // "unset"))"'
echo
echo "$sized of ${#examples[@]} JobManager pods sized by the webhook ($total found)"

step "Try it yourself (in another terminal)"
cat <<EOF
export KUBECONFIG=$KUBECONFIG PATH=$FMW_TOOLS_BIN:\$PATH
kubectl get pods -n $demo_ns -l component=jobmanager -o custom-columns='POD:.metadata.name,LIMIT:.spec.containers[0].resources.limits.memory,REQUEST:.spec.containers[0].resources.requests.memory'
kubectl apply --dry-run=server -o yaml -f manifests/examples/custom-command-jobmanager.yaml
build/bin/flink-memory explain -f manifests/examples/session-cluster-flink-1.18.yaml
tail -f ${run_dir#"$root"/}/webhook.log
EOF
echo "(The dry run stores nothing; the examples' ConfigMaps are in namespace default for it.)"

ok=0
[ "$sized" -eq ${#examples[@]} ] || ok=1
if [ "$once" = 1 ]; then
    exit $ok
fi
echo
echo "Serving until Ctrl-C."
wait "$webhook_pid"
rc=$?
webhook_pid=
echo "run: the webhook exited with status $rc (log: $run_dir/webhook.log)" >&2
exit 1
