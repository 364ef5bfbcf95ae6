#!/usr/bin/env bash
# run.sh FUZZ_DIR SECONDS TARGET...: for each target, replays the committed corpus
# (tests/fuzz/corpus/<target>: crash reproducers and hand-written seeds) and the seeds made from
# the test fixtures, then fuzzes it for SECONDS with those as the starting corpus. New inputs go
# to FUZZ_DIR/runs/<target>, crashes to FUZZ_DIR/artifacts/<target>/. One process at a time
# (the machine has two cores). Ends with "fuzz: N passed, N failed".
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ $# -ge 3 ] || { echo "usage: run.sh FUZZ_DIR SECONDS TARGET..." >&2; exit 2; }
dir=$1 seconds=$2
shift 2

seeds=$dir/seeds
rm -rf "$seeds"
python3 "$here/seeds.py" "$seeds" || exit 1
# The corpus earlier long runs reached, minimized (libFuzzer -merge=1) and kept small: one
# archive per target in tests/fuzz/merged/, unpacked next to the seeds.
for archive in "$here"/merged/*.tar.gz; do
    [ -f "$archive" ] || continue
    t=$(basename "$archive" .tar.gz)
    mkdir -p "$seeds/merged-$t"
    tar -xzf "$archive" -C "$seeds/merged-$t" || exit 1
done

# Leak checks stay on (LeakSanitizer is part of ASan); UBSan reports abort (built so).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

passed=0 failed=0 failures=()
total_execs=0
for t in "$@"; do
    bin=$dir/bin/fuzz_$t
    committed=$here/corpus/$t
    work=$dir/runs/$t
    artifacts=$dir/artifacts/$t
    log=$dir/logs/$t.log
    mkdir -p "$work" "$artifacts" "$(dirname "$log")" "$committed" "$seeds/$t"
    [ -x "$bin" ] || { echo "fuzz $t: no binary $bin" >&2; failed=$((failed + 1)); failures+=("$t"); continue; }
    start=$(date +%s)

    # 1. Replay: every committed and seed input once, as regression tests.
    mapfile -t inputs < <(find "$committed" "$seeds/$t" "$seeds/merged-$t" -type f 2>/dev/null | sort)
    ok=1
    if [ ${#inputs[@]} -gt 0 ]; then
        if ! timeout 600 "$bin" -timeout=20 -rss_limit_mb=2560 "${inputs[@]}" >"$log" 2>&1; then
            ok=0
            echo "fuzz $t: a corpus input fails (replay):"
            grep -E 'ERROR: |runtime error|invariant failed|Running: ' "$log" | tail -n 8
        fi
    fi

    # 2. Fuzz for SECONDS from the committed corpus, the seeds and what earlier runs found.
    if [ $ok -eq 1 ]; then
        timeout $((seconds + 120)) "$bin" -max_total_time="$seconds" -timeout=20 \
            -rss_limit_mb=2560 -max_len=65536 -print_final_stats=1 \
            -artifact_prefix="$artifacts/" "$work" "$committed" "$seeds/$t" \
            $( [ -d "$seeds/merged-$t" ] && echo "$seeds/merged-$t" ) >>"$log" 2>&1
        rc=$?
        if [ $rc -ne 0 ]; then
            ok=0
            echo "fuzz $t: crash (exit $rc); reproducer(s) in $artifacts:"
            grep -E 'ERROR: |runtime error|invariant failed|SUMMARY' "$log" | tail -n 8
            ls "$artifacts" | tail -n 3
        fi
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n1)
    total_execs=$((total_execs + ${execs:-0}))
    if [ $ok -eq 1 ]; then
        passed=$((passed + 1))
        echo "fuzz $t: ok (${#inputs[@]} replayed, ${execs:-0} runs, $cov, $(( $(date +%s) - start ))s)"
    else
        failed=$((failed + 1)); failures+=("$t")
    fi
done
[ $failed -eq 0 ] || echo "fuzz: failed targets: ${failures[*]} (logs in $dir/logs)"
echo "fuzz: $total_execs executions in all"
echo "fuzz: $passed passed, $failed failed"
[ $failed -eq 0 ]
