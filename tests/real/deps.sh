#!/usr/bin/env bash
# What tests/real needs of the machine beyond Python's packages (make pydeps): root (mount
# namespaces), a JDK (java, and javac for ParseArgs.java), and the programs the sandbox and
# Flink's scripts call: unshare, mount, flock, envsubst, hostname. The packages that bring them
# are installed by scripts/install-deps.sh (the one list); this only checks, so a missing one is
# named instead of failing half-way through a start.
set -euo pipefail
scripts/install-deps.sh
if [ "$(id -u)" -ne 0 ]; then
    echo "real-start needs root (private mount, UTS and PID namespaces)" >&2
    exit 1
fi
missing=()
for cmd in java javac unshare flock mount envsubst hostname; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
done
if [ ${#missing[@]} -ne 0 ]; then
    echo "real-start: not found after scripts/install-deps.sh: ${missing[*]}" >&2
    exit 1
fi
