#!/usr/bin/env bash
# Runs each named test suite (a make target) in order, keeps going after a failure, and ends with
# one summary line; exits non-zero if any suite failed.
# A suite that cannot run on this machine says why in build/suites-skipped/SUITE and is counted
# as skipped, with that reason, never as passed.
set -uo pipefail
passed=0; failed=0; skipped=0; failures=()
for suite in "$@"; do
  echo "=== suite: $suite"
  start=$(date +%s)
  rm -f "build/suites-skipped/$suite"
  if make --no-print-directory "$suite"; then
    if [ -s "build/suites-skipped/$suite" ]; then
      skipped=$((skipped + 1))
      echo "=== suite $suite: SKIPPED: $(cat "build/suites-skipped/$suite") ($(( $(date +%s) - start ))s)"
    else
      passed=$((passed + 1)); echo "=== suite $suite: ok ($(( $(date +%s) - start ))s)"
    fi
  else
    failed=$((failed + 1)); failures+=("$suite"); echo "=== suite $suite: FAILED ($(( $(date +%s) - start ))s)"
  fi
done
[ $failed -eq 0 ] || echo "failed suites: ${failures[*]}"
echo "suites: $passed passed, $skipped skipped, $failed failed"
[ $failed -eq 0 ]
