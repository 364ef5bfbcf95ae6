#!/usr/bin/env bash
# run.sh [--once]: `make run`. Starts the local control plane (unless one is up) and, where this
# machine can run one, a node (tests/node: containerd, runc, a kubelet); installs the Helm chart,
# applies the Flink examples from manifests/examples, and prints what the JobManager and
# TaskManager pods received. With the node, the chart's own pods serve admission and the examples' JobManagers
# run on it (images built here, tests/node/images.sh), and the report puts each JVM's heap next
# to its limit. Without one (up.sh says why in one line; FMW_RUN_NODE=0 asks for this), the
# webhook runs as a local process and the chart points at it (webhook.url). Then it keeps
# serving until Ctrl-C, and stops what it started. --once (or FMW_RUN_ONCE=1) stops right after
# the report and exits non-zero unless every JobManager pod and every TaskManager Deployment's pod
# was sized by the webhook (and, on the node, the JobManagers run with Flink's heap): the form the
# tests run.
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

step() { printf "\n==> %s  [%ds]\n" "$*" "$SECONDS"; }
fail() {
    echo "run: $*" >&2
    exit 1
}

started_cluster=no
node=no
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
    if [ "$node" = yes ]; then
        # Pods go while their kubelet still runs (a pod whose node is gone stays Terminating and
        # holds its namespace); whatever remains after 60 s is removed from the API by force.
        "$FMW_KUBECTL" wait --for=delete namespace "$demo_ns" "$release_ns" --timeout=60s >/dev/null 2>&1 ||
            for ns in "$demo_ns" "$release_ns"; do
                "$FMW_KUBECTL" delete pods -n "$ns" --all --force --grace-period=0 >/dev/null 2>&1
            done
        "$root/tests/node/down.sh" && echo "node stopped; the host's changes undone"
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

# The examples' Flink releases, and the images they run on the node: built here from PyPI's Flink
# (image/flink). The custom-command example's company image is stood in for by the release of the
# line its annotation names.
declare -A example_image=(
    [flink:1.18.1-scala_2.12-java11]=1.18.1
    [flink:2.1.0-scala_2.12-java17]=2.1.0
    [flink-platform/streaming-runtime:2024.11]=1.20.5
)

# A namespace an earlier run left terminating takes no new objects: let it go first.
for ns in "$release_ns" "$demo_ns"; do
    for _ in $(seq 240); do
        phase=$(kubectl get namespace "$ns" -o jsonpath='{.status.phase}' 2>/dev/null) || break
        [ "$phase" = Terminating ] || break
        # Pods of a node that is gone never finish terminating: removed from the API by force.
        kubectl delete pods -n "$ns" --all --force --grace-period=0 >/dev/null 2>&1
        sleep 0.5
    done
done

mkdir -p "$run_dir"
if [ "${FMW_RUN_NODE:-1}" != 0 ]; then
    step "A node beside it (containerd and runc from Debian, a kubelet of the same version)"
    "$root/tests/node/down.sh" --quiet || fail "a node left by an earlier run could not be cleaned"
    "$root/tests/node/up.sh" 2>"$run_dir.node-up.err"
    rc=$?
    case $rc in
    0)
        node=yes
        # shellcheck source=tests/node/lib.sh
        source "$root/tests/node/lib.sh"
        ;;
    3) echo "$(grep -m1 'cannot run a node' "$run_dir.node-up.err"); the webhook runs as a local process instead" ;;
    *) fail "the node did not start: $(tail -n 5 "$run_dir.node-up.err")" ;;
    esac
    rm -f "$run_dir.node-up.err"
fi

if [ "$node" = yes ]; then
    step "Images, built without an engine and imported into the node's containerd"
    "$root/tests/node/images.sh" webhook || fail "the webhook's image could not be built"
    "$root/tests/node/images.sh" flink $(printf '%s\n' "${example_image[@]}" | sort -u) >"$run_dir/images.log" 2>&1 ||
        fail "the Flink images could not be built: $(tail -n 5 "$run_dir/images.log")"
    grep '^flink-image' "$run_dir/images.log"
    step "helm install $release charts/flink-memory-webhook (its own pods, on the node)"
    helm upgrade --install "$release" "$root/charts/flink-memory-webhook" -n "$release_ns" --create-namespace \
        --set image.repository=localhost/flink-memory-webhook --set "image.tag=$(make -s -C "$root" print-version)" \
        --set image.pullPolicy=Never --wait --timeout 180s >"$run_dir/helm.log" 2>&1 ||
        fail "helm install failed: $(cat "$run_dir/helm.log")"
    installed=yes
    sed -n '1,6p' "$run_dir/helm.log"
    kubectl get pods -n "$release_ns" -o wide
else
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

    step "helm install $release charts/flink-memory-webhook (webhook.url points at the local process)"
    helm upgrade --install "$release" "$root/charts/flink-memory-webhook" -n "$release_ns" \
        --create-namespace --set "webhook.url=https://127.0.0.1:$webhook_port/mutate" \
        --set "webhook.caBundle=$(base64 -w0 "$run_dir/pki/ca.crt")" >"$run_dir/helm.log" 2>&1 ||
        fail "helm install failed: $(cat "$run_dir/helm.log")"
    installed=yes
    sed -n '1,6p' "$run_dir/helm.log"
    kubectl get mutatingwebhookconfiguration "$release" \
        -o jsonpath='{range .webhooks[*]}webhook {.name}: {.clientConfig.url}{"\n"}{end}'
fi

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
if [ "$node" = yes ]; then
    # On the node: each Flink image named by a local one of the same release, the application
    # example's usrlib (an emptyDir for a user's jar) a host directory with a stand-in job, and
    # the TaskManagers at 0 replicas (no cluster DNS here for them to find their JobManager).
    usrlib=$run_dir/usrlib
    mkdir -p "$usrlib"
    cp "$root/build/node-images/job-${example_image[flink:2.1.0-scala_2.12-java17]}.jar" "$usrlib/job.jar"
    images_json=$(for k in "${!example_image[@]}"; do
        jq -n --arg k "$k" --arg v "${example_image[$k]}" '{($k): $v}'
    done | jq -s add)
    for ex in "${examples[@]}"; do
        echo "\$ kubectl apply -f manifests/examples/$ex.yaml   (images as built here)"
        kubectl create --dry-run=client -o json -f "$root/manifests/examples/$ex.yaml" |
            jq -s --argjson images "$images_json" --arg usrlib "$usrlib" '
              def local: .containers |= map(if $images[.image] then
                    .image = "localhost/flink:" + $images[.image] | .imagePullPolicy = "Never" else . end) |
                  .volumes |= ((. // []) | map(if .name == "job-artifacts-volume" and .emptyDir then
                    {name, hostPath: {path: $usrlib, type: "Directory"}} else . end));
              {apiVersion: "v1", kind: "List", items: [.[] | (.items // [.])[] | del(.metadata.namespace) |
                if .kind == "Pod" then .spec |= local
                elif .spec.template.spec then .spec.template.spec |= local else . end |
                if .kind == "Deployment" and .spec.template.metadata.labels.component == "taskmanager"
                then .spec.replicas = 0 else . end]}' |
            kubectl apply -n "$demo_ns" -f - 2>&1 | sed 's/^/  /'
    done
    for k in "${!example_image[@]}"; do echo "  image $k -> localhost/flink:${example_image[$k]}"; done
else
    for ex in "${examples[@]}"; do
        echo "\$ kubectl apply -f manifests/examples/$ex.yaml"
        kubectl apply -n "$demo_ns" -f "$root/manifests/examples/$ex.yaml" 2>&1 | sed 's/^/  /'
    done
fi

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
echo "$sized of ${#examples[@]} JobManager pods sized by the webhook ($total found)"

step "The TaskManager pods"
# Where the TaskManagers run at 0 replicas (on the node), each Deployment's pod template is sent
# as a Pod with --dry-run=server: the API server calls the webhook and stores nothing.
tm_json=$(kubectl get pods -n "$demo_ns" -l component=taskmanager -o json)
tm_deployments=$(kubectl get deployments -n "$demo_ns" -o json |
    jq '[.items[] | select(.spec.template.metadata.labels.component == "taskmanager")]')
if [ "$(jq '.items | length' <<<"$tm_json")" -eq 0 ]; then
    echo "(the Deployments run no TaskManager here: one pod of each template, --dry-run=server)"
    tm_json=$(jq -c '.[] | {apiVersion: "v1", kind: "Pod",
        metadata: (.spec.template.metadata + {name: (.metadata.name + "-preview")}),
        spec: .spec.template.spec}' <<<"$tm_deployments" |
        while read -r pod; do
            kubectl create --dry-run=server -n "$demo_ns" -o json -f - <<<"$pod"
        done | jq -s '{items: .}')
else
    # One pod per Deployment is enough to show what each gets.
    tm_json=$(jq '{items: (.items | group_by(.metadata.labels.app // .metadata.generateName) | map(.[0]))}' \
        <<<"$tm_json")
fi
jq -r '
  .items | sort_by(.metadata.name)[] |
  (.metadata.annotations["flink-memory-webhook/resolved"] // "null" | fromjson) as $r |
  (.spec.containers[] | select(.name == "taskmanager")) as $c |
  def mi: . / 1048576 | round | tostring + "Mi";
  "pod \(.metadata.name) (container \($c.name))",
  "  memory limit:   \($c.resources.limits.memory // "unset")",
  "  memory request: \($c.resources.requests.memory // "unset")",
  (if $r then
    "  Flink \($r.flinkVersion): heap \($r.frameworkHeap | mi) framework + \($r.taskHeap | mi) task, off-heap \($r.frameworkOffHeap | mi) framework + \($r.taskOffHeap | mi) task, network \($r.network | mi), managed \($r.managed | mi), metaspace \($r.metaspace | mi), overhead \($r.overhead | mi) = \($r.totalProcess)",
    "  JVM flags Flink starts it with: \($r.jvmArgs)",
    "  configuration: \($r.source)"
   else "  NOT sized by the webhook (no flink-memory-webhook/resolved annotation)" end)
' <<<"$tm_json"
tm_sized=$(jq '[.items[] | select(.metadata.annotations["flink-memory-webhook/resolved"])] | length' \
    <<<"$tm_json")
tm_want=$(jq 'length' <<<"$tm_deployments")
echo
echo "$tm_sized of $tm_want TaskManager Deployments' pods sized by the webhook"

ok=0
[ "$sized" -eq ${#examples[@]} ] || ok=1
[ "$tm_want" -gt 0 ] && [ "$tm_sized" -eq "$tm_want" ] || ok=1

if [ "$node" = yes ]; then
    step "On the node: each JobManager's JVM next to its limit"
    jm_json() { kubectl get pod -n "$demo_ns" "$1" -o json; }
    # jcmd as the JVM's own user (PID 1 of the container), by the script's text.
    jcmd_as_jvm=$(cat "$root/tests/node/jvm-flags.sh")

    for pod in $(jq -r '.items[].metadata.name' <<<"$pods_json" | sort); do
        up=no
        for _ in $(seq 360); do
            p=$(jm_json "$pod") || break
            state=$(jq -r '[.status.containerStatuses[]? | select(.name == "jobmanager" or .name == "flink")][0].state | keys[0] // "waiting"' <<<"$p")
            if [ "$state" = running ] && curl -sf --max-time 2 "http://$(jq -r .status.podIP <<<"$p"):8081/overview" |
                jq -e '."flink-version"' >/dev/null 2>&1; then
                up=yes
                break
            fi
            sleep 0.5
        done
        if [ $up = no ]; then
            echo "pod $pod: not running ($(jq -c '[.status.containerStatuses[]?.state][0]' <<<"$p"))"
            kubectl logs -n "$demo_ns" "$pod" --tail 5 2>&1 | sed 's/^/  /'
            ok=1
            continue
        fi
        limit=$(jq -r '[.spec.containers[] | select(.name == "jobmanager" or .name == "flink")][0].resources.limits.memory' <<<"$p")
        heap=$(jq -r '.metadata.annotations["flink-memory-webhook/resolved"] | fromjson | .heap' <<<"$p")
        total=$(jq -r '.metadata.annotations["flink-memory-webhook/resolved"] | fromjson | .totalProcess' <<<"$p")
        cgroup=$(kubectl exec -n "$demo_ns" "$pod" -- cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null)
        for _ in 1 2 3 4 5; do
            flags=$(kubectl exec -n "$demo_ns" "$pod" -- sh -c "$jcmd_as_jvm" 2>&1) && break
            sleep 1
        done
        maxheap=$(grep -o -- '-XX:MaxHeapSize=[0-9]*' <<<"$flags" | head -n1 | cut -d= -f2)
        [ -n "$maxheap" ] || echo "  jcmd 1 VM.flags: $(tail -n 3 <<<"$flags")"
        # What the same JVM, with the same collector, makes of -Xmx<Flink's heap>: it rounds the
        # heap up to its alignment. Run in the container without the variables that add options.
        gc=$(grep -o -- '-XX:+Use[A-Za-z]*GC' <<<"$flags" | head -n1)
        want=$(kubectl exec -n "$demo_ns" "$pod" -- env -u _JAVA_OPTIONS -u JAVA_TOOL_OPTIONS -u JDK_JAVA_OPTIONS \
            /opt/java/openjdk/bin/java $gc "-Xmx$heap" -XX:+PrintFlagsFinal -version 2>/dev/null |
            awk '$2 == "MaxHeapSize" {print $4}')
        version=$(curl -s --max-time 3 "http://$(jq -r .status.podIP <<<"$p"):8081/overview" | jq -r '."flink-version" // "?"')
        same="="
        [ -n "$maxheap" ] && [ "$maxheap" = "$want" ] || { same="!="; ok=1; }
        echo "pod $pod: Running, Flink $version"
        echo "  memory limit $limit (the container's cgroup: ${cgroup:-?} bytes) = Flink's total process $total"
        echo "  JVM MaxHeapSize ${maxheap:-?} (jcmd VM.flags) $same ${want:-?}, the same JVM's -Xmx$heap (Flink's heap)"
    done
fi

step "Try it yourself (in another terminal)"
cat <<EOF
export KUBECONFIG=$KUBECONFIG PATH=$FMW_TOOLS_BIN:\$PATH
kubectl get pods -n $demo_ns -l component=jobmanager -o custom-columns='POD:.metadata.name,LIMIT:.spec.containers[0].resources.limits.memory,REQUEST:.spec.containers[0].resources.requests.memory'
kubectl apply --dry-run=server -o yaml -f manifests/examples/custom-command-jobmanager.yaml
build/bin/flink-memory explain -f manifests/examples/session-cluster-flink-1.18.yaml
EOF
if [ "$node" = yes ]; then
    echo "kubectl logs -n $release_ns -l app.kubernetes.io/name=flink-memory-webhook -f"
    echo "kubectl logs -n $demo_ns -l component=jobmanager --tail 20"
else
    echo "tail -f ${run_dir#"$root"/}/webhook.log"
fi
echo "(The dry run stores nothing; the examples' ConfigMaps are in namespace default for it.)"

if [ "$once" = 1 ]; then
    exit $ok
fi
echo
echo "Serving until Ctrl-C."
if [ "$node" = yes ]; then
    # The chart's pods serve; this waits for Ctrl-C, or for the kubelet to stop.
    while node_pid kubelet >/dev/null; do sleep 2; done
    echo "run: the node's kubelet stopped (logs: build/node/logs)" >&2
    exit 1
fi
wait "$webhook_pid"
rc=$?
webhook_pid=
echo "run: the webhook exited with status $rc (log: $run_dir/webhook.log)" >&2
exit 1
