#!/usr/bin/env bash
# Runs each named test suite (a make target) in order, keeps going after a failure, and ends with
# one summary line; exits non-zero if any suite failed.
set -uo pipefail
passed=0; failed=0; failures=()
for suite in "$@"; do
  echo "=== suite: $suite"
  start=$(date +%s)
  if make --no-print-directory "$suite"; then
    passed=$((passed + 1)); echo "=== suite $suite: ok ($(( $(date +%s) - start ))s)"
  else
    failed=$((failed + 1)); failures+=("$suite"); echo "=== suite $suite: FAILED ($(( $(date +%s) - start ))s)"
  fi
done
[ $failed -eq 0 ] || echo "failed suites: ${failures[*]}"
echo "suites: $passed passed, $failed failed"
[ $failed -eq 0 ]
