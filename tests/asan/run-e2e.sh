#!/usr/bin/env bash
# run-e2e.sh ASAN_DIR: the end-to-end suite (real control plane; run under
# tests/cluster/with-cluster.sh), the admission suite's CLI and server checks and the
# hostile-input catalogue, with the sanitized flink-memory-webhook and flink-memory from
# ASAN_DIR/bin (and kube-get from ASAN_DIR/tests). Every sanitized process writes its reports to
# ASAN_DIR/reports/; any report fails the run, leaks included.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(cd "$1" && pwd)
reports=$dir/reports
rm -rf "$reports"
mkdir -p "$reports"

export FMW_ASAN_BIN=$dir/bin
export KUBE_GET=$dir/tests/kube-get # pkg/kube's client on its own (tests/e2e), sanitized too
export PYTHONPATH=$root/tests/asan${PYTHONPATH:+:$PYTHONPATH}
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:log_path=$reports/asan
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$reports/ubsan

cd "$root"
suites=(tests/e2e tests/admission tests/hostile)
[ -n "${KUBECONFIG:-}" ] || suites=(tests/admission tests/hostile) # outside with-cluster.sh
python3 -m pytest -q -p asan_plugin "${suites[@]}"
rc=$?

shopt -s nullglob
found=("$reports"/*)
if [ ${#found[@]} -gt 0 ]; then
    echo "asan: ${#found[@]} sanitizer report(s):"
    for f in "${found[@]}"; do
        echo "--- $f"
        head -n 40 "$f"
    done
    rc=1
fi
exit $rc
