#!/usr/bin/env bash
# Prints what of this host the node touches, one fact per line, so that the state before
# node-up and after node-down can be compared line by line (tests/node/run.sh): our processes,
# mounts and network namespaces, cgroups, the bridge, iptables chains, the kubelet's sysctls, and
# the directories at fixed places.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

# Processes: our containerd and its shims, the kubelet, the scheduler, the API forwarder, and
# anything left in our cgroups.
for pid in $(pgrep -f "containerd|$tools_bin/kubelet|$tools_bin/kube-scheduler|socat .*$api_vip" 2>/dev/null); do
    [ "$pid" = $$ ] && continue
    cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || continue
    [ -n "${cmd// /}" ] || continue
    case $cmd in *host-state.sh* | *pgrep*) continue ;; esac
    echo "process: $cmd"
done | sort
while read -r h; do
    [ -d "$h/$cgroup_parent" ] && echo "cgroup: $h/$cgroup_parent ($(find "$h/$cgroup_parent" -type d | wc -l) dirs)"
    [ -d "$h/kubepods" ] && echo "cgroup: $h/kubepods"
done < <(cgroup_hierarchies)
awk -v d="$node_dir" '$2 == d || index($2, d "/") == 1 || $2 ~ "^/run/netns/" {print "mount: " $2}' /proc/self/mounts | sort
ls /run/netns 2>/dev/null | sed 's/^/netns: /'
ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | grep -E "^($bridge|veth)" | sed 's/@.*//; s/^/link: /'
ip -o addr show 2>/dev/null | grep -E "$node_ip|$api_vip" | awk '{print "address: " $2 " " $4}'
if command -v iptables-save >/dev/null; then
    for ipt in iptables-save ip6tables-save; do
        "$ipt" 2>/dev/null | grep -E '^:KUBE-|-j KUBE-' | sed "s/^/$ipt: /"
    done
else
    echo "iptables: not installed (the kubelet can add no chains)"
fi
for s in "${kubelet_sysctls[@]}"; do
    [ -e "/proc/sys/$s" ] && echo "sysctl: $s = $(cat "/proc/sys/$s")"
done
for d in /run/netns /var/lib/cni /var/log/containers; do
    [ -e "$d" ] && echo "exists: $d"
done
ls /var/lib/cni/results 2>/dev/null | sed 's/^/cni-cache: /'
