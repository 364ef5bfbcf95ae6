#!/usr/bin/env bash
# The node suite (make node), inside tests/cluster/with-cluster.sh: the host's state noted, the
# node started (tests/node/up.sh) and its images imported, tests/node's tests run against it, the
# node stopped (down.sh, on every exit path), and the host's state compared with the note: a
# difference fails the suite. Where this machine cannot run a node (up.sh exits 3) the suite is
# skipped with up.sh's reason, written to build/suites-skipped/node for scripts/run-suites.sh.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
skipped_dir=$cluster_root/build/suites-skipped
rm -f "$skipped_dir/node"
mkdir -p "$node_dir/logs"

# A node left by a run that was cut short is cleaned first, so the note is of the host itself.
"$here/down.sh" --quiet || exit 1
"$here/host-state.sh" >"$node_dir/logs/host-before.txt"
up_err=$node_dir/logs/up.err
"$here/up.sh" 2> >(tee "$up_err" >&2)
rc=$?
if [ $rc -eq 3 ]; then
    mkdir -p "$skipped_dir"
    reason=$(grep -m1 'cannot run a node here' "$up_err" | sed 's/^node: cannot run a node here: //')
    echo "${reason:-the node could not start}" >"$skipped_dir/node"
    echo "node: SKIPPED: ${reason:-the node could not start}"
    exit 0
fi
finish() {
    local rc=$1
    "$here/down.sh" || rc=1
    "$here/host-state.sh" >"$node_dir/logs/host-after.txt"
    if ! diff -u "$node_dir/logs/host-before.txt" "$node_dir/logs/host-after.txt" \
        >"$node_dir/logs/host-diff.txt"; then
        echo "node: the host is not as it was before node-up:" >&2
        cat "$node_dir/logs/host-diff.txt" >&2
        rc=1
    else
        echo "node: after node-down the host is as before (host-state.sh: $(wc -l <"$node_dir/logs/host-before.txt") lines, the same)"
    fi
    exit "$rc"
}
trap 'finish 1' INT TERM
[ $rc -eq 0 ] || finish 1
# shellcheck source=/dev/null
source "$node_dir/env"
"$here/images.sh" webhook && "$here/images.sh" flink ${NODE_FLINK_VERSIONS:-1.18.1 2.1.0} || finish 1
# The VerticalPodAutoscaler's admission controller for test_sizing_from_the_pod.py.
"$here/vpa/build.sh" || finish 1
# NODE_PYTEST_ARGS: more pytest arguments while working on the suite (-k taskmanager -s).
# shellcheck disable=SC2086 # several words on purpose
python3 -m pytest -q -rfEsxX "$here" ${NODE_PYTEST_ARGS:-}
rc=$?

# The remains of a node that was killed, not stopped: a pod running, then the kubelet and
# containerd killed with SIGKILL (their shims and the pod's processes live on, reparented). The
# node-down that follows must clean it all as well; the comparison of the host's state says.
echo "node: a pod left running while the kubelet and containerd are killed (SIGKILL)"
kubectl run fmw-crash-probe -n default --image localhost/pause:1 --image-pull-policy Never \
    --restart Never >/dev/null || rc=1
kubectl wait -n default --for=condition=Ready pod/fmw-crash-probe --timeout=60s >/dev/null || rc=1
kill -KILL "$(node_pid kubelet)" "$(node_pid containerd)" 2>/dev/null
sleep 1
echo "node: killed; left behind: $(pgrep -c -f "containerd-shim-runc-v2 .*-address $containerd_sock") shims," \
    "$(awk -v d="$node_dir" 'index($2, d "/") == 1' /proc/self/mounts | wc -l) mounts under build/node"
kubectl delete pod -n default fmw-crash-probe --force --grace-period=0 >/dev/null 2>&1
finish $rc
