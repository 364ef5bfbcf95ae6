#!/usr/bin/env bash
# with-cluster.sh SUITE COMMAND [ARG...]: runs COMMAND with the local control plane up and
# build/cluster/env sourced, and returns COMMAND's exit code.
#
# One instance is shared per run. A control plane started by hand (make cluster-up) is used and
# left running. Otherwise this starts one, marks it as this run's (FMW_RUN_ID, set by mk/cluster.mk
# for each top-level make), and stops it after COMMAND only if SUITE is the last suite of the run
# that needs the cluster (FMW_RUN_SUITES, the suites `make test` runs, against FMW_CLUSTER_SUITES);
# run on its own, a suite always cleans up after itself. A control plane left by another run that
# was cut short is replaced.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

[ $# -ge 2 ] || die "usage: with-cluster.sh SUITE COMMAND [ARG...]"
suite=$1
shift
run=${FMW_RUN_ID:-pid-$$}
owner_file=$cluster_dir/owner

owner=
if cluster_running; then
    owner=$(cat "$owner_file" 2>/dev/null || echo manual)
    if [ "$owner" != manual ] && [ "$owner" != "run $run" ]; then
        say "replacing a control plane left by an earlier run"
        "$here/down.sh" >/dev/null || exit 1
        owner=
    fi
fi
if [ -z "$owner" ]; then
    "$here/up.sh" || exit 1
    owner="run $run"
    echo "$owner" >"$owner_file"
fi

# shellcheck source=/dev/null
source "$cluster_dir/env"
"$@"
rc=$?

# Is SUITE the last suite of this run that needs the cluster?
last=$suite
if [ -n "${FMW_RUN_SUITES:-}" ] && [[ " $FMW_RUN_SUITES " == *" $suite "* ]]; then
    for s in $FMW_RUN_SUITES; do
        [[ " ${FMW_CLUSTER_SUITES:-} " == *" $s "* ]] && last=$s
    done
fi
if [ "$owner" = "run $run" ] && [ "$last" = "$suite" ]; then
    "$here/down.sh" || rc=1
fi
exit $rc
