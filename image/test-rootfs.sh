#!/usr/bin/env bash
# test-rootfs.sh ROOTFS: runs the webhook from the root filesystem that rootfs.sh assembled, the
# way the chart runs its container: chroot into ROOTFS mounted read-only (readOnlyRootFilesystem),
# as uid/gid 65532 (runAsNonRoot), with the TLS pair mounted at /etc/flink-memory-webhook/tls.
# Nothing from the host's /usr is visible, so a missing library, CA bundle or passwd entry shows.
# Checks: --version, /healthz and /readyz on the health port, and an AdmissionReview over TLS
# answered with Flink's size. Needs root (mount namespace, chroot); prints TAP-like lines and a
# closing "N passed, N failed" line.
set -uo pipefail
[ $# -eq 1 ] || { echo "usage: test-rootfs.sh ROOTFS" >&2; exit 2; }
rootfs=$(cd "$1" && pwd)
[ "$(id -u)" -eq 0 ] || { echo "test-rootfs: needs root (unshare --mount, chroot)" >&2; exit 1; }

work=$(mktemp -d)
pid=
passed=0
failed=0
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; fi
    rm -rf "$work"
}
trap cleanup EXIT

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

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# A CA and a serving certificate for 127.0.0.1, readable by uid 65532 only.
mkdir -p "$work/tls"
(
    cd "$work/tls" &&
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
            -keyout ca.key -out ca.crt -subj /CN=fmw-rootfs-ca &&
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout tls.key \
            -out tls.csr -subj /CN=127.0.0.1 &&
        printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >ext.cnf &&
        openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 \
            -out tls.crt -extfile ext.cnf
) >"$work/openssl.log" 2>&1 || { cat "$work/openssl.log"; exit 1; }
chown 65532:65532 "$work/tls/tls.key" "$work/tls/tls.crt"
chmod 0400 "$work/tls/tls.key"
# An API server that is not there: the webhook starts without one, and a pod without a
# ConfigMap volume needs none.
cat >"$work/kubeconfig" <<'KC'
apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: none, user: {token: none}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
KC
chmod 0644 "$work/kubeconfig"

# in_rootfs CMD...: CMD inside a private mount namespace where ROOTFS is read-only, /tmp is a
# tmpfs and the test's files are bind-mounted at /tmp/tls, as uid 65532. No --fork: unshare, bash
# and chroot each exec the next, so CMD keeps the pid that started it (and gets our signals).
# shellcheck disable=SC2016 # expanded by the bash that unshare starts
setup='
    set -e
    root=$1 work=$2
    shift 2
    mount --make-rprivate /
    mount --bind "$root" "$root"
    mount -o remount,bind,ro "$root"
    mount -t tmpfs -o size=16m,mode=1777 tmpfs "$root/tmp"
    mkdir "$root/tmp/tls"
    mount --bind "$work/tls" "$root/tmp/tls"
    exec chroot --userspec=65532:65532 "$root" "$@"
'
in_rootfs() { unshare --mount -- bash -c "$setup" in_rootfs "$rootfs" "$work" "$@"; }

check "the binary runs from the rootfs as uid 65532" in_rootfs /usr/local/bin/flink-memory-webhook --version

nothing_from_host() {
    # Every shared library the binary needs is resolved inside the rootfs.
    in_rootfs /lib64/ld-linux-x86-64.so.2 --list /usr/local/bin/flink-memory-webhook >"$work/libs" 2>&1 || {
        cat "$work/libs"; return 1; }
    ! grep -q 'not found' "$work/libs" && cat "$work/libs"
}
check "ld.so finds every shared library inside the rootfs" nothing_from_host

port=$(free_port)
health=$(free_port)
cp "$work/kubeconfig" "$work/tls/kubeconfig"
unshare --mount -- bash -c "$setup" in_rootfs "$rootfs" "$work" \
    /usr/local/bin/flink-memory-webhook --tls-cert-file /tmp/tls/tls.crt --tls-key-file /tmp/tls/tls.key --kubeconfig /tmp/tls/kubeconfig \
    --listen-address 127.0.0.1 --port "$port" --health-port "$health" \
    --drain-delay-ms 0 >"$work/webhook.log" 2>&1 &
pid=$!

ready() {
    local i
    for ((i = 0; i < 100; i++)); do
        curl -sf --max-time 1 "http://127.0.0.1:$health/readyz" && return 0
        kill -0 "$pid" 2>/dev/null || { cat "$work/webhook.log"; return 1; }
        sleep 0.1
    done
    cat "$work/webhook.log"
    return 1
}
check "/readyz answers once the certificate is loaded" ready
check "/healthz answers" curl -sf --max-time 2 "http://127.0.0.1:$health/healthz"

review() {
    cat >"$work/review.json" <<'JSON'
{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"rootfs-1",
 "kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},
 "namespace":"default","operation":"CREATE","object":{"apiVersion":"v1","kind":"Pod",
 "metadata":{"name":"jm","labels":{"component":"jobmanager"}},
 "spec":{"containers":[{"name":"jobmanager","image":"flink:1.18.1","args":["jobmanager"],
 "resources":{"limits":{"memory":"4Gi"}}}]}}}}
JSON
    curl -sf --max-time 5 --cacert "$work/tls/ca.crt" -H 'Content-Type: application/json' \
        --data-binary @"$work/review.json" "https://127.0.0.1:$port/mutate" >"$work/resp.json" || return 1
    jq -e '.response.allowed == true and .response.patchType == "JSONPatch"' "$work/resp.json" &&
        jq -r .response.patch "$work/resp.json" | base64 -d | jq -e 'any(.[]; .value == "1600Mi")'
}
check "an AdmissionReview over TLS gets Flink's 1600Mi" review

metrics() {
    curl -sf --max-time 2 "http://127.0.0.1:$health/metrics" >"$work/metrics" || return 1
    grep -E '^flink_memory_webhook_http_requests_total\{route="/mutate",code="200"\} [1-9]' "$work/metrics"
}
check "/metrics counts the request" metrics

stop() {
    kill -TERM "$pid" && wait "$pid"
    local rc=$?
    pid=
    [ $rc -eq 0 ] || { echo "exit status $rc"; cat "$work/webhook.log"; return 1; }
    grep -q '"msg":"shutdown requested' "$work/webhook.log" || { cat "$work/webhook.log"; return 1; }
}
check "SIGTERM: the webhook drains and exits 0" stop

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
