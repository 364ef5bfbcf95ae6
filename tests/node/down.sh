#!/usr/bin/env bash
# Stops the node tests/node/up.sh started and undoes every change it made to the host, in an
# order that works after a clean run and after one that was killed half way (up.sh runs this
# first for that reason): the kubelet and scheduler; every container and sandbox of our
# containerd (its own teardown first, then whatever still runs in our cgroups is killed);
# containerd, its shims and the API forwarder; the pods' network namespaces, mounts under
# build/node, the bridge, our cgroups, iptables chains the kubelet added, directories created at
# fixed places; and the sysctls the kubelet changed, written back as found (build/node-host).
#
#   down.sh                    all of it, with a line saying what was done
#   down.sh --quiet            the same, silent unless something cannot be undone
#   down.sh --restore-sysctls  only the sysctls (up.sh, right after the kubelet has set them)
#
# Exit 1 if anything could not be undone; it says what.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

mode=${1:-}
failed=()
done_=()

restore_sysctls() {
    local s v
    [ -f "$host_state/sysctl" ] || return 0
    while read -r s v; do
        [ -n "$s" ] || continue
        [ "$(cat "/proc/sys/$s" 2>/dev/null)" = "$v" ] && continue
        if echo "$v" >"/proc/sys/$s" 2>/dev/null; then done_+=("sysctl $s"); else failed+=("sysctl $s=$v"); fi
    done <"$host_state/sysctl"
}
if [ "$mode" = --restore-sysctls ]; then
    restore_sysctls
    [ ${#failed[@]} -eq 0 ] || { node_say "cannot restore ${failed[*]}" >&2; exit 1; }
    exit 0
fi

# stop NAME: proc_stop (tests/cluster/lib.sh), noted when NAME ran.
stop() { proc_stop "$node_dir" "$1" && done_+=("$1"); }

# cgroup_pids: every process in our cgroups, in any hierarchy.
cgroup_pids() {
    local h
    while read -r h; do
        [ -d "$h/$cgroup_parent" ] && find "$h/$cgroup_parent" -name cgroup.procs -exec cat {} + 2>/dev/null
    done < <(cgroup_hierarchies) | sort -u
}

stop kube-scheduler
stop kubelet

# Containers and sandboxes, through containerd while it runs: each task killed and deleted (runc
# unmounts its root and removes its cgroup), then the containers (the CRI's records).
if node_pid containerd >/dev/null; then
    tasks=$("${ctr[@]}" tasks ls -q 2>/dev/null)
    for t in $tasks; do "${ctr[@]}" tasks kill -s SIGKILL "$t" >/dev/null 2>&1; done
    for t in $tasks; do
        for ((i = 0; i < 20; i++)); do
            "${ctr[@]}" tasks delete "$t" >/dev/null 2>&1 && break
            sleep 0.25
        done
    done
    for c in $("${ctr[@]}" containers ls -q 2>/dev/null); do
        "${ctr[@]}" containers delete "$c" >/dev/null 2>&1
    done
    [ -z "$tasks" ] || done_+=("$(wc -w <<<"$tasks") containers")
fi
# Whatever still runs in our cgroups (containerd was killed, a task would not die) is killed.
for ((i = 0; i < 40; i++)); do
    pids=$(cgroup_pids)
    [ -z "$pids" ] && break
    # shellcheck disable=SC2086 # one pid per word
    kill -KILL $pids 2>/dev/null
    sleep 0.25
done
[ -z "$(cgroup_pids)" ] || failed+=("processes in our cgroups: $(cgroup_pids | tr '\n' ' ')")

stop containerd
# The shims of our containerd: reparented to PID 1, known by the socket in their arguments.
for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $containerd_sock" 2>/dev/null); do
    kill -KILL "$pid" 2>/dev/null && done_+=("shim $pid")
done
stop api-forward

# Network namespaces the CRI made for our sandboxes (cni-*, newer than node-up), bind mounts
# under /run/netns.
if [ -d /run/netns ]; then
    for ns in /run/netns/cni-*; do
        [ -e "$ns" ] || continue
        [ -f "$host_state/sysctl" ] && [ "$ns" -nt "$host_state/sysctl" ] || continue
        umount "$ns" 2>/dev/null
        rm -f "$ns" && done_+=("netns $(basename "$ns")")
    done
fi

# Mounts under build/node (the kubelet's root bind mount, pod volumes, containerd's rootfs and
# shm mounts), deepest first.
for ((i = 0; i < 3; i++)); do
    mapfile -t mounts < <(awk -v d="$node_dir" '$2 == d || index($2, d "/") == 1 {print $2}' /proc/self/mounts | sort -r)
    [ ${#mounts[@]} -eq 0 ] && break
    for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
    done_+=("${#mounts[@]} mounts")
done
mapfile -t mounts < <(awk -v d="$node_dir" '$2 == d || index($2, d "/") == 1 {print $2}' /proc/self/mounts)
[ ${#mounts[@]} -eq 0 ] || failed+=("mounts: ${mounts[*]}")

if ip link show "$bridge" >/dev/null 2>&1; then
    ip link del "$bridge" && done_+=("bridge $bridge") || failed+=("bridge $bridge")
fi
# The pods' veth pairs went with their namespaces.

# cgroups, deepest first, once empty.
while read -r h; do
    [ -d "$h/$cgroup_parent" ] || continue
    find "$h/$cgroup_parent" -depth -type d -exec rmdir {} + 2>/dev/null
    [ -d "$h/$cgroup_parent" ] && failed+=("cgroup $h/$cgroup_parent") || done_+=("cgroup ${h##*/}")
done < <(cgroup_hierarchies)

# iptables: the kubelet's own chains (KUBE-FIREWALL and its canaries), if it made them here. Left
# alone when the host had KUBE- chains before node-up (another Kubernetes' rules).
if command -v iptables-save >/dev/null && [ "$(cat "$host_state/iptables-kube-chains" 2>/dev/null)" = 0 ]; then
    for ipt in iptables ip6tables; do
        for table in filter nat mangle; do
            chains=$("$ipt-save" -t "$table" 2>/dev/null | sed -n 's/^:\(KUBE-[^ ]*\).*/\1/p')
            [ -n "$chains" ] || continue
            # Jumps into them from the built-in chains, then the chains.
            "$ipt-save" -t "$table" | grep -E '^-A [A-Z]+ .*-j KUBE-' | sed 's/^-A/-D/' |
                while read -r rule; do eval "$ipt -t $table $rule" 2>/dev/null; done
            for c in $chains; do "$ipt" -t "$table" -F "$c" 2>/dev/null; done
            for c in $chains; do "$ipt" -t "$table" -X "$c" 2>/dev/null; done
            done_+=("$ipt $table chains")
        done
    done
fi

# Fixed places: the kubelet's links in /var/log/containers into our pod logs; libcni's cache of
# our network; the directories themselves when node-up found none.
for l in /var/log/containers/*; do
    [ -L "$l" ] && [[ $(readlink "$l") == "$node_dir/"* ]] && rm -f "$l"
done
# libcni caches each attachment as <network>-<sandbox id>-<interface>: ours are our bridge's
# (fmw-pods) and containerd's loopback of our sandboxes, which a killed node never deleted; the
# sandbox is ours when our containerd's root still has its directory.
for f in /var/lib/cni/results/*; do
    [ -f "$f" ] || continue
    name=${f##*/}
    id=$(sed -n 's/.*-\([0-9a-f]\{64\}\)-[^-]*$/\1/p' <<<"$name")
    if [[ $name == fmw-pods-* ]] ||
        { [ -n "$id" ] && [ -d "$node_dir/containerd/root/io.containerd.grpc.v1.cri/sandboxes/$id" ]; }; then
        rm -f "$f" && done_+=("cni cache $name")
    fi
done
if [ -f "$host_state/created" ]; then
    while read -r d; do
        [ -n "$d" ] && [ -d "$d" ] || continue
        case $d in
        /var/lib/cni) rm -rf "$d" ;;
        *) rmdir "$d" 2>/dev/null || failed+=("$d is not empty") ;;
        esac
    done <"$host_state/created"
fi

restore_sysctls
if [ ${#failed[@]} -eq 0 ]; then
    rm -rf "$host_state"
    [ -d "$node_dir" ] && find "$node_dir" -mindepth 1 -maxdepth 1 ! -name logs -exec rm -rf {} +
fi

if [ ${#failed[@]} -gt 0 ]; then
    node_say "could not undo: ${failed[*]}" >&2
    exit 1
fi
[ "$mode" = --quiet ] && exit 0
if [ ${#done_[@]} -gt 0 ]; then
    node_say "down: $(IFS=,; echo "${done_[*]}" | sed 's/,/, /g')"
else
    node_say "not running; nothing to undo"
fi
