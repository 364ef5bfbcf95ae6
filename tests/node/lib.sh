# Sourced by tests/node's scripts: the node's paths, addresses and processes (README.md there).
# shellcheck shell=bash disable=SC2034 # the variables are used by the scripts that source this
# shellcheck source=../cluster/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../cluster/lib.sh"

node_dir=$cluster_root/build/node
# What node-up found on the host before changing it, kept apart from node_dir so that a run cut
# short leaves it for the next node-up or node-down to restore (down.sh deletes it last).
host_state=$cluster_root/build/node-host
node_name=fmw-node
# A bridge of our own holds the node's address; pods get addresses in pod_cidr on it, with no
# gateway off the machine. api_vip, the "kubernetes" Service's ClusterIP, is a local address on
# the same bridge, where socat forwards to the apiserver on loopback.
bridge=fmwbr0
node_ip=10.244.0.1
pod_cidr=10.244.0.0/24
api_vip=10.96.0.1
service_cidr=10.96.0.0/24
kubelet_port=$((port_base + 250))
kubelet_healthz_port=$((port_base + 248))
scheduler_port=$((port_base + 259))
# Every cgroup of the node's pods lives under this one, in each hierarchy.
cgroup_parent=fmw-node
containerd_sock=$node_dir/containerd/containerd.sock
ctr=(ctr --address "$containerd_sock" --namespace k8s.io)
# The sysctls the kubelet sets once, when its container manager starts, and the values it sets
# (pkg/kubelet/cm/container_manager_linux.go, setupKernelTunables, with component-helpers'
# node/util/sysctl constants); node-up puts back what it found as soon as the kubelet has set
# them, and node-down again.
kubelet_sysctls=(vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops
    kernel/keys/root_maxkeys kernel/keys/root_maxbytes)
kubelet_sysctl_values=(1 0 10 1 1000000 25000000)
# The processes node-up starts, in start order; down.sh stops them in reverse.
node_components=(containerd api-forward kubelet kube-scheduler)

node_say() { echo "node: $*"; }
node_die() {
    echo "node: $*" >&2
    exit 1
}

# node_pid NAME: a node process's pid (tests/cluster/lib.sh's proc_pid).
node_pid() { proc_pid "$node_dir" "$1"; }

# cgroup_hierarchies: the mounted cgroup v1 hierarchies (and the unified one) a pod's processes
# join, as directories under /sys/fs/cgroup.
cgroup_hierarchies() {
    local d
    for d in /sys/fs/cgroup/*; do
        [ -d "$d" ] && [ ! -L "$d" ] && [ -e "$d/cgroup.procs" ] && echo "$d"
    done
}
