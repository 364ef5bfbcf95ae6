#!/usr/bin/env bash
# What tests/real needs of the machine beyond Python's packages (make pydeps): a JDK (java, and
# javac for ParseArgs.java), and the programs the sandbox and Flink's scripts call: unshare,
# mount, flock (util-linux, mount), envsubst (gettext-base, as in the Flink image), hostname.
# As root, missing ones are installed with apt-get; otherwise they are named and the run fails.
set -euo pipefail
declare -A package=([java]=openjdk-17-jdk-headless [javac]=openjdk-17-jdk-headless
                    [unshare]=util-linux [flock]=util-linux
                    [mount]=mount [envsubst]=gettext-base [hostname]=hostname)
missing=()
for cmd in java javac unshare flock mount envsubst hostname; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("${package[$cmd]}")
done
# One package for several commands is installed once.
[ ${#missing[@]} -eq 0 ] || mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "real-start needs root (mount namespaces) and the Debian packages: ${missing[*]}" >&2
    exit 1
fi
echo "real-start: installing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
