#!/usr/bin/env bash
# Starts the local control plane: etcd, kube-apiserver and kube-controller-manager on loopback,
# from the binaries in build/tools/bin (tests/cluster/tools.sh builds them). Writes
# build/cluster/kubeconfig and build/cluster/env; logs go to build/cluster/logs.
#
# Idempotent: a control plane that is already up is left as it is; what a crashed or half-finished
# earlier run left behind is stopped and removed first. Prints only status lines.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

if cluster_running; then
    say "already up at $apiserver_url (kubeconfig: ${kubeconfig#"$cluster_root"/})"
    exit 0
fi
if [ -n "$(find "$cluster_dir" -mindepth 1 -maxdepth 1 ! -name logs 2>/dev/null)" ]; then
    say "cleaning up what an earlier run left"
    "$here/down.sh" >/dev/null
fi

for t in etcd kube-apiserver kube-controller-manager; do
    [ -x "$tools_bin/$t" ] || die "$tools_bin/$t is missing: run 'make tools' first"
done
for tool in openssl curl; do
    command -v "$tool" >/dev/null || die "$tool is not installed (make deps installs it)"
done
for port in $etcd_port $etcd_peer_port $apiserver_port $kcm_port; do
    if port_in_use "$port"; then
        die "port $port on 127.0.0.1 is already taken by another process; pick other ports with" \
            "FMW_CLUSTER_PORT_BASE (now $port_base; the ports are base+257, +379, +380, +443)"
    fi
done

mkdir -p "$pid_dir" "$log_dir" "$pki_dir" "$cluster_dir/etcd"
chmod 700 "$cluster_dir"
echo "$port_base" >"$cluster_dir/port-base"

# On any failure from here on, leave nothing running; the logs stay for a look.
started=no
on_exit() {
    local rc=$?
    if [ $rc -ne 0 ] && [ $started = yes ]; then
        "$here/down.sh" >/dev/null 2>&1 || true
        say "start failed; logs are in ${log_dir#"$cluster_root"/}"
    fi
    exit $rc
}
trap on_exit EXIT

# ---- certificates: a throwaway CA, the apiserver's serving cert, two client certs, SA keys ----
gen_key "$pki_dir/ca.key"
openssl req -x509 -new -key "$pki_dir/ca.key" -subj "/CN=flink-memory-webhook local CA" -days 7 \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out "$pki_dir/ca.crt" 2>/dev/null
sign apiserver "/CN=kube-apiserver" \
    "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=serverAuth" \
    "subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
# The admin user is in system:masters, which RBAC lets do anything.
sign admin "/O=system:masters/CN=fmw-admin" \
    "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=clientAuth"
# The controller manager's own identity, bound to its roles by RBAC's bootstrap policy.
sign controller-manager "/CN=system:kube-controller-manager" \
    "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=clientAuth"
gen_key "$pki_dir/sa.key"
openssl pkey -in "$pki_dir/sa.key" -pubout -out "$pki_dir/sa.pub" 2>/dev/null

write_kubeconfig "$cluster_dir/controller-manager.kubeconfig" controller-manager

# start NAME ARGS...: build/tools/bin/NAME, as a process of the control plane (lib.sh's
# proc_start); wait_for NAME SECONDS CHECK...: until CHECK succeeds (proc_await).
start() {
    proc_start "$cluster_dir" "$1" "$tools_bin/$1" "${@:2}"
    started=yes
}
wait_for() { proc_await "$cluster_dir" "$@"; }

# ---- etcd: plain HTTP on loopback, no fsync (the data is thrown away) ----
start etcd --name fmw-local --data-dir "$cluster_dir/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" \
    --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-cluster "fmw-local=http://127.0.0.1:$etcd_peer_port" \
    --unsafe-no-fsync --log-level warn
etcd_healthy() {
    curl -s --max-time 2 "http://127.0.0.1:$etcd_port/health" 2>/dev/null | grep -q '"health":"true"'
}
wait_for etcd 30 etcd_healthy

# ---- kube-apiserver ----
# Admission: Kubernetes' default plugins stay on; these are named as well, the ones our webhook
# meets in a real cluster, so that a change of defaults cannot silently drop one. The "kubernetes"
# Service's endpoints would be 127.0.0.1, which endpoints may not hold, so its reconciler is off:
# nothing here needs that Service (tests/node forwards its address to the apiserver itself).
# For the node (tests/node): the apiserver calls a webhook Service's endpoints directly (the
# aggregator's routing: no kube-proxy on this path), reaches kubelets by their InternalIP (a node
# name would be a DNS query leaving the machine) and checks their serving certificates against
# the CA, as the admin identity (logs, exec).
admission=NamespaceLifecycle,LimitRanger,ServiceAccount,DefaultTolerationSeconds,Priority
admission+=,PodSecurity,MutatingAdmissionPolicy,MutatingAdmissionWebhook
admission+=,ValidatingAdmissionPolicy,ValidatingAdmissionWebhook,ResourceQuota
start kube-apiserver \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 --secure-port "$apiserver_port" --advertise-address 127.0.0.1 \
    --endpoint-reconciler-type none \
    --cert-dir "$cluster_dir/apiserver" \
    --tls-cert-file "$pki_dir/apiserver.crt" --tls-private-key-file "$pki_dir/apiserver.key" \
    --client-ca-file "$pki_dir/ca.crt" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$pki_dir/sa.pub" \
    --service-account-signing-key-file "$pki_dir/sa.key" \
    --service-cluster-ip-range 10.96.0.0/24 \
    --authorization-mode RBAC \
    --enable-admission-plugins "$admission" \
    --allow-privileged=true \
    --enable-aggregator-routing=true \
    --kubelet-preferred-address-types InternalIP \
    --kubelet-certificate-authority "$pki_dir/ca.crt" \
    --kubelet-client-certificate "$pki_dir/admin.crt" --kubelet-client-key "$pki_dir/admin.key" \
    --profiling=false \
    --v 1
wait_for kube-apiserver 120 apiserver_ready
write_kubeconfig "$kubeconfig" admin

# ---- kube-controller-manager: Deployments → ReplicaSets → Pods, service accounts, namespaces ----
start kube-controller-manager \
    --kubeconfig "$cluster_dir/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$cluster_dir/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$cluster_dir/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$kcm_port" \
    --cert-dir "$cluster_dir/controller-manager" \
    --leader-elect=false \
    --use-service-account-credentials=true \
    --service-account-private-key-file "$pki_dir/sa.key" \
    --root-ca-file "$pki_dir/ca.crt" \
    --cluster-signing-cert-file "$pki_dir/ca.crt" --cluster-signing-key-file "$pki_dir/ca.key" \
    --profiling=false \
    --v 1
kcm_healthy() {
    [ "$(curl -sk --max-time 2 "https://127.0.0.1:$kcm_port/healthz" 2>/dev/null)" = ok ]
}
wait_for kube-controller-manager 60 kcm_healthy

# ---- the env file other suites source ----
q() { printf '%q' "$1"; }
cat >"$cluster_dir/env" <<EOF
# Written by tests/cluster/up.sh for this run of the local control plane; source it from bash.
export KUBECONFIG=$(q "$kubeconfig")
export FMW_CLUSTER_DIR=$(q "$cluster_dir")
export FMW_CLUSTER_URL=$(q "$apiserver_url")
export FMW_CLUSTER_CA=$(q "$pki_dir/ca.crt")
export FMW_CLUSTER_CA_KEY=$(q "$pki_dir/ca.key")
export FMW_TOOLS_BIN=$(q "$tools_bin")
export FMW_KUBECTL=$(q "$tools_bin/kubectl")
export FMW_HELM=$(q "$tools_bin/helm")
export PATH=$(q "$tools_bin"):\$PATH
EOF
say "up at $apiserver_url; kubeconfig ${kubeconfig#"$cluster_root"/}, env ${cluster_dir#"$cluster_root"/}/env"
