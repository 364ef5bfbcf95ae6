#!/usr/bin/env bash
# Stops the processes tests/cluster/up.sh started — exactly those, by the pids it recorded, and
# only while they still run our binaries — then removes the control plane's state (etcd data,
# certificates, kubeconfig, env). The logs stay in build/cluster/logs until the next start.
# Idempotent: with nothing running it only tidies up.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

# A node beside the control plane goes first (tests/node/down.sh undoes its host changes too).
if [ -d "$cluster_root/build/node-host" ] || [ -d "$cluster_root/build/node/pids" ]; then
    "$cluster_root/tests/node/down.sh" --quiet || exit 1
fi

stopped=()
for ((i = ${#components[@]} - 1; i >= 0; i--)); do
    name=${components[i]}
    proc_stop "$cluster_dir" "$name" || continue
    stopped+=("$name")
done

if [ -d "$cluster_dir" ]; then
    find "$cluster_dir" -mindepth 1 -maxdepth 1 ! -name logs -exec rm -rf {} +
fi
if [ ${#stopped[@]} -gt 0 ]; then
    say "stopped ${stopped[*]}; state removed"
else
    say "not running; state removed"
fi
