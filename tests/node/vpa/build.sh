#!/usr/bin/env bash
# Builds the VerticalPodAutoscaler's admission controller from the module pinned in this
# directory's go.mod into build/tools/bin/vpa-admission-controller, and copies the module's own
# CustomResourceDefinitions (deploy/vpa-v1-crd-gen.yaml) beside it, for the node suite's VPA test
# (tests/node/test_sizing_from_the_pod.py). Nothing of the module is kept in the repository.
#
# Go's module and build caches are its defaults (outside the repo); when build/tools/vpa.stamp
# names this go.mod, go.sum and Go version, nothing is built. Prints only status lines.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
out=${FMW_TOOLS_DIR:-$root/build/tools}
bin=$out/bin/vpa-admission-controller
crd=$out/vpa/vpa-v1-crd-gen.yaml
package=k8s.io/autoscaler/vertical-pod-autoscaler/pkg/admission-controller

command -v go >/dev/null || { echo "vpa: go is not installed (Go >= 1.26 is needed)" >&2; exit 1; }

# Go's version as this module's directory sees it (a toolchain line would apply there), this
# script, and the module pinned: what the binary is made of.
want=$( (cd "$here" && go env GOVERSION; cat "$0" "$here/go.mod" "$here/go.sum") | sha256sum | cut -d' ' -f1)
if [ "$(cat "$out/vpa.stamp" 2>/dev/null || true)" = "$want" ] && [ -x "$bin" ] && [ -s "$crd" ]; then
    echo "vpa: up to date in ${bin#"$root"/}"
    exit 0
fi

start=$(date +%s)
mkdir -p "$out/bin" "$out/vpa"
log=$out/vpa/build.log
trap 'rm -f "$bin.tmp" "$crd.tmp"' EXIT
# The first go command downloads the modules: its words go to the log, not the screen.
if ! version=$(cd "$here" && go list -m -f '{{.Version}}' k8s.io/autoscaler/vertical-pod-autoscaler 2>"$log"); then
    echo "vpa: go list failed; the end of ${log#"$root"/}:" >&2
    tail -n 40 "$log" >&2
    exit 1
fi
echo "vpa: building the VerticalPodAutoscaler's admission controller $version (a few minutes the first time)"
# CGO off, as tests/cluster/tools.sh builds the control plane: static, nothing from the C toolchain.
if ! (cd "$here" && CGO_ENABLED=0 go build -o "$bin.tmp" "$package") >>"$log" 2>&1; then
    echo "vpa: go build failed; the end of ${log#"$root"/}:" >&2
    tail -n 40 "$log" >&2
    exit 1
fi
dir=$(cd "$here" && go list -m -f '{{.Dir}}' k8s.io/autoscaler/vertical-pod-autoscaler)
cp "$dir/deploy/vpa-v1-crd-gen.yaml" "$crd.tmp"
chmod u+w "$crd.tmp"
mv -f "$bin.tmp" "$bin"
mv -f "$crd.tmp" "$crd"
echo "$want" >"$out/vpa.stamp"
echo "vpa: built in $(($(date +%s) - start))s into ${bin#"$root"/}"
