#!/usr/bin/env bash
# Runs every Criterion unit-test binary given; fails if any test fails or any sanitizer reports.
set -uo pipefail
status=0
for bin in "$@"; do
  log="$bin.log"
  "$bin" --jobs=2 >"$log" 2>&1
  rc=$?
  printf "%-12s %s\n" "$(basename "$bin")" "$(grep Synthesis "$log" | tail -n 1)"
  if [ $rc -ne 0 ] || grep -qE 'ERROR: (Leak|Address)Sanitizer|runtime error:' "$log"; then
    echo "FAILED: $bin (log: $log)" >&2
    grep -E '\[(FAIL|----)\]|Sanitizer|runtime error' "$log" | head -40 >&2
    status=1
  fi
done
exit $status
