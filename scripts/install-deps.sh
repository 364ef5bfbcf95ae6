#!/usr/bin/env bash
# Installs the Debian packages that building and testing need. As root it runs apt-get; otherwise
# it names what is missing and fails, so nothing is ever set up by hand without being written here.
#
#   scripts/install-deps.sh          everything: building, testing, the oracle, the benchmarks,
#                                    real-start (a JDK with javac; unshare, mount, flock, envsubst
#                                    and hostname, which its sandbox and Flink's scripts call),
#                                    the node (containerd, runc, the CNI plugins, iproute2, and
#                                    socat, which forwards the API's Service address to the API
#                                    server: tests/node/README.md)
#   scripts/install-deps.sh build    only what compiling the two binaries needs (image/Dockerfile)
set -euo pipefail

build_packages=(
  build-essential pkg-config
  libjansson-dev libyaml-dev libevent-dev libssl-dev libcurl4-openssl-dev
)
packages=("${build_packages[@]}"
  libcriterion-dev
  clang clang-tidy cppcheck clang-format
  libclang-rt-14-dev llvm-14
  openssl ca-certificates curl jq
  maven default-jdk-headless
  util-linux mount gettext-base hostname
  containerd runc containernetworking-plugins iproute2 socat
)
case ${1:-all} in
  all) ;;
  build) packages=("${build_packages[@]}") ;;
  *) echo "usage: install-deps.sh [all|build]" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${missing[*]}" >&2
  echo "install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "installing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# A fresh machine has stale or empty lists; update once, quietly, then install.
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
