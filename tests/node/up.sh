#!/usr/bin/env bash
# Starts a real Kubernetes node beside the local control plane (tests/cluster/up.sh must be up):
# containerd and runc from Debian's packages and a kubelet and kube-scheduler built from the same
# k8s.io/kubernetes module as the control plane (make tools), with every piece of state under
# build/node. README.md says what it changes on the host and how down.sh undoes each change;
# whatever a run cut short left behind is cleaned first, as cluster-up does.
#
# Exit 3 with one line on stderr when this machine cannot run a node (not root, no writable
# memory cgroup, a program missing): callers fall back or skip with that reason.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

cannot() {
    echo "node: cannot run a node here: $*" >&2
    exit 3
}
[ "$(id -u)" -eq 0 ] || cannot "not root (the kubelet, containerd and the bridge need it)"
for p in containerd runc ctr ip socat openssl; do
    command -v "$p" >/dev/null || cannot "$p is missing (scripts/install-deps.sh installs it)"
done
[ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] ||
    cannot "the CNI plugins are missing (Debian's containernetworking-plugins)"
[ -d /sys/fs/cgroup/memory ] || cannot "no cgroup v1 memory hierarchy at /sys/fs/cgroup/memory"
probe=/sys/fs/cgroup/memory/fmw-node-probe.$$
mkdir "$probe" 2>/dev/null && rmdir "$probe" || cannot "the memory cgroup is not writable"
[ ${#containerd_sock} -lt 100 ] ||
    cannot "the checkout's path is too long for containerd's socket ($containerd_sock)"
for k in kubelet kube-scheduler kubectl; do
    [ -x "$tools_bin/$k" ] || node_die "$tools_bin/$k is missing: run make tools"
done
cluster_running || node_die "the control plane is not running: run make cluster-up first"
if ip -4 route show | grep -v "dev $bridge" | grep -qE "^(10\.244\.0\.|10\.96\.0\.|default via 10\.244\.0\.)"; then
    node_die "this machine already routes $pod_cidr or $service_cidr elsewhere: $(ip -4 route | grep -E '10\.(244|96)\.0\.' | head -n1)"
fi

"$here/down.sh" --quiet
start_ns=$(date +%s%N)
mkdir -p "$node_dir"/{pids,logs,pki,cni/net.d,cni/ipam,containerd/opt,kubelet,pod-logs} "$host_state"

# ---- what the host looks like before: restored by down.sh ----
for s in "${kubelet_sysctls[@]}"; do
    [ -e "/proc/sys/$s" ] && printf '%s %s\n' "$s" "$(cat "/proc/sys/$s")"
done >"$host_state/sysctl"
# Directories that containerd, libcni and the kubelet create at fixed places; removed by down.sh
# only when they did not exist before.
: >"$host_state/created"
for d in /run/netns /var/lib/cni /var/log/containers; do
    [ -e "$d" ] || echo "$d" >>"$host_state/created"
done
if command -v iptables-save >/dev/null; then
    iptables-save 2>/dev/null | grep -c '^:KUBE-' >"$host_state/iptables-kube-chains" || true
fi

# ---- cgroups: one parent of ours in every hierarchy ----
while read -r h; do
    mkdir -p "$h/$cgroup_parent"
    # A new cpuset cgroup has no CPUs or memory nodes until given its parent's.
    if [ -e "$h/cpuset.cpus" ]; then
        cat "$h/cpuset.cpus" >"$h/$cgroup_parent/cpuset.cpus"
        cat "$h/cpuset.mems" >"$h/$cgroup_parent/cpuset.mems"
    fi
done < <(cgroup_hierarchies)

# ---- the network: a bridge that routes nowhere ----
ip link add "$bridge" type bridge
ip addr add "$node_ip/24" dev "$bridge"
ip addr add "$api_vip/32" dev "$bridge"
ip link set "$bridge" up
cat >"$node_dir/cni/net.d/10-fmw.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "fmw-pods",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$bridge",
      "isGateway": false,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$node_dir/cni/ipam",
        "ranges": [[{"subnet": "$pod_cidr", "rangeStart": "10.244.0.10", "gateway": "$node_ip"}]],
        "routes": [{"dst": "$service_cidr", "gw": "$node_ip"}]
      }
    },
    {"type": "loopback"}
  ]
}
EOF
# No DNS server answers on the node's address: a pod's name lookup fails here, on the machine.
echo "nameserver $node_ip" >"$node_dir/resolv.conf"

# start NAME PROGRAM ARGS...: a node process (tests/cluster/lib.sh's proc_start); await NAME
# SECONDS CHECK...: until CHECK succeeds (proc_await).
start() { proc_start "$node_dir" "$@"; }
await() { proc_await "$node_dir" "$@"; }

# ---- containerd: Debian's, with its own root, state and socket ----
# restrict_oom_score_adj: without CAP_SYS_RESOURCE (as in some VMs and nested sandboxes) runc
# cannot set the -998 that containerd gives sandboxes; clamped to containerd's own score instead.
cat >"$node_dir/containerd/config.toml" <<EOF
version = 2
root = "$node_dir/containerd/root"
state = "$node_dir/containerd/state"
disabled_plugins = ["io.containerd.internal.v1.tracing", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs"]
[grpc]
  address = "$containerd_sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$node_dir/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/pause:1"
  restrict_oom_score_adj = true
  enable_cdi = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$node_dir/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
EOF
start containerd containerd --config "$node_dir/containerd/config.toml"
await containerd 30 "${ctr[@]}" version
"$here/images.sh" pause

# ---- identities: the kubelet's client and serving certificates, the scheduler's ----
ca_sign() { # ca_sign NAME SUBJECT EXT...: into node_dir/pki, signed by the cluster's CA
    local name=$1
    shift
    sign "node-$name" "$@"
    mv "$pki_dir/node-$name.crt" "$pki_dir/node-$name.key" "$node_dir/pki/"
}
ca_sign kubelet "/O=system:nodes/CN=system:node:$node_name" "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=clientAuth"
ca_sign kubelet-serving "/CN=$node_name" "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" \
    "subjectAltName=IP:$node_ip,DNS:$node_name"
ca_sign scheduler "/CN=system:kube-scheduler" "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=clientAuth"
node_kubeconfig() { # node_kubeconfig NAME: write_kubeconfig with node_dir/pki's certificate
    cp "$node_dir/pki/node-$1.crt" "$node_dir/pki/node-$1.key" "$pki_dir/"
    write_kubeconfig "$node_dir/$1.kubeconfig" "node-$1"
    rm -f "$pki_dir/node-$1.crt" "$pki_dir/node-$1.key"
}
node_kubeconfig kubelet
node_kubeconfig scheduler
# The apiserver authorizes by RBAC alone (no Node authorizer): the bootstrap role system:node,
# bound to the group every kubelet's certificate names.
"$tools_bin/kubectl" --kubeconfig "$kubeconfig" apply -f - >/dev/null <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: fmw-node
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:node"}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: "system:nodes"}
EOF

# ---- the "kubernetes" Service's address, forwarded to the apiserver on loopback ----
start api-forward socat "TCP-LISTEN:443,bind=$api_vip,reuseaddr,fork" "TCP:127.0.0.1:$apiserver_port"
api_forwarded() { port_open "$api_vip" 443; }
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
await api-forward 10 api_forwarded

# ---- the kubelet ----
cat >"$node_dir/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
cgroupRoot: /$cgroup_parent
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://$containerd_sock
address: $node_ip
port: $kubelet_port
healthzBindAddress: 127.0.0.1
healthzPort: $kubelet_healthz_port
readOnlyPort: 0
podLogsDir: $node_dir/pod-logs
volumePluginDir: $node_dir/kubelet/volume-plugins
resolvConf: $node_dir/resolv.conf
tlsCertFile: $node_dir/pki/node-kubelet-serving.crt
tlsPrivateKeyFile: $node_dir/pki/node-kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki_dir/ca.crt}
authorization: {mode: Webhook}
maxPods: 30
# The node needs no iptables rules of the kubelet's (no NAT, no kube-proxy): none are made.
makeIPTablesUtilChains: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "200Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
EOF
start kubelet "$tools_bin/kubelet" --config "$node_dir/kubelet.yaml" \
    --kubeconfig "$node_dir/kubelet.kubeconfig" --root-dir "$node_dir/kubelet/root" \
    --cert-dir "$node_dir/kubelet/pki" --hostname-override "$node_name" --node-ip "$node_ip" --v 1
node_ready() {
    [ "$("$tools_bin/kubectl" --kubeconfig "$kubeconfig" get node "$node_name" \
        -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]
}
await kubelet 90 node_ready
# The kubelet sets its kernel tunables once, when its container manager starts, which can be a
# moment after the node is Ready: once all of them have its values, what this machine had is
# put back (down.sh writes them back again at the end).
kubelet_tuned() {
    local i
    for i in "${!kubelet_sysctls[@]}"; do
        [ "$(cat "/proc/sys/${kubelet_sysctls[i]}")" = "${kubelet_sysctl_values[i]}" ] || return 1
    done
}
await kubelet 30 kubelet_tuned
"$here/down.sh" --restore-sysctls

start kube-scheduler "$tools_bin/kube-scheduler" --kubeconfig "$node_dir/scheduler.kubeconfig" \
    --authentication-kubeconfig "$node_dir/scheduler.kubeconfig" \
    --authorization-kubeconfig "$node_dir/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$scheduler_port" --leader-elect=false --v 1
scheduler_healthy() {
    [ "$(curl -sk --max-time 2 "https://127.0.0.1:$scheduler_port/healthz")" = ok ]
}
await kube-scheduler 60 scheduler_healthy

q() { printf '%q' "$1"; }
cat >"$node_dir/env" <<EOF
# Written by tests/node/up.sh; source it from bash after build/cluster/env.
export FMW_NODE_NAME=$(q "$node_name")
export FMW_NODE_IP=$(q "$node_ip")
export FMW_NODE_DIR=$(q "$node_dir")
export FMW_NODE_CONTAINERD=$(q "$containerd_sock")
export FMW_NODE_CGROUP_PARENT=$(q "$cgroup_parent")
EOF
elapsed_ms=$((($(date +%s%N) - start_ns) / 1000000))
node_say "$node_name Ready in $((elapsed_ms / 1000)).$((elapsed_ms % 1000 / 100))s" \
    "(kubelet $("$tools_bin/kubelet" --version | cut -d' ' -f2), containerd $(containerd --version | cut -d' ' -f3)," \
    "runc $(runc --version | head -n1 | cut -d' ' -f3)); env build/node/env"
