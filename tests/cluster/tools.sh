#!/usr/bin/env bash
# Builds the control plane's tools from the Go modules pinned in tests/cluster/go.mod into
# build/tools/bin: etcd, kube-apiserver, kube-controller-manager, kubectl, helm, and the node's
# kubelet and kube-scheduler (tests/node), all of one k8s.io/kubernetes version.
#
# The Go module and build caches are Go's defaults (under $HOME, outside the repo), so a second
# build is quick; and when build/tools/stamp already names this exact go.mod, go.sum, Go version
# and flags, nothing is built at all. Prints only status lines: the step, and during the long
# compile a progress line every 30 seconds.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${FMW_TOOLS_DIR:-$root/build/tools}
bin=$out/bin

# The versions the binaries report. They must match go.mod; check_versions below makes sure.
kube_version=v1.37.2
helm_version=v3.22.0

tools=(etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl helm)
packages=(
    go.etcd.io/etcd/server/v3
    k8s.io/kubernetes/cmd/kube-apiserver
    k8s.io/kubernetes/cmd/kube-controller-manager
    k8s.io/kubernetes/cmd/kube-scheduler
    k8s.io/kubernetes/cmd/kubelet
    k8s.io/kubernetes/cmd/kubectl
    helm.sh/helm/v3/cmd/helm
)

command -v go >/dev/null || { echo "tools: go is not installed (Go >= 1.26 is needed)" >&2; exit 1; }

# What k8s.io/kubernetes' own build stamps (hack/lib/version.sh): without it the binaries say
# v0.0.0-master and kubectl and helm warn about version skew.
major=${kube_version#v}; major=${major%%.*}
minor=${kube_version#v*.}; minor=${minor%%.*}
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean"
done
ldflags+=" -X helm.sh/helm/v3/internal/version.version=$helm_version"

stamp_text() {
    printf 'go: %s\nldflags: %s\n' "$(go env GOVERSION)" "$ldflags"
    cat "$here/go.mod" "$here/go.sum"
}

check_versions() {
    local mod
    mod=$(cd "$here" && go list -m -f '{{.Path}} {{.Version}}' k8s.io/kubernetes helm.sh/helm/v3)
    if ! grep -qx "k8s.io/kubernetes $kube_version" <<<"$mod" ||
        ! grep -qx "helm.sh/helm/v3 $helm_version" <<<"$mod"; then
        echo "tools: tools.sh names $kube_version and $helm_version but go.mod has:" >&2
        echo "$mod" >&2
        exit 1
    fi
}

want=$(stamp_text | sha256sum | cut -d' ' -f1)
have=$(cat "$out/stamp" 2>/dev/null || true)
complete=yes
for t in "${tools[@]}"; do [ -x "$bin/$t" ] || complete=no; done
if [ "$want" = "$have" ] && [ $complete = yes ]; then
    echo "tools: up to date (kubernetes $kube_version, helm $helm_version) in ${bin#"$root"/}"
    exit 0
fi

check_versions
echo "tools: building etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kubectl ($kube_version)" \
    "and helm ($helm_version); the first build takes a while (about 20 minutes on 2 cores)"
start=$(date +%s)
mkdir -p "$bin"
tmp=$(mktemp -d "$out/.build.XXXXXX")
ticker=
finish() {
    [ -z "$ticker" ] || kill "$ticker" 2>/dev/null || true
    rm -rf "$tmp"
}
trap finish EXIT
elapsed() { local s=$(($(date +%s) - start)); printf '%dm%02ds' $((s / 60)) $((s % 60)); }

# Step 1: the module graph and the list of packages to compile (downloads the modules the first
# time). Go's own output goes to a log, shown if a step fails.
echo "tools: [1/2] resolving and downloading the Go modules ($(elapsed))"
if ! (cd "$here" && go list -deps -f '{{.ImportPath}}' "${packages[@]}") >"$tmp/packages" 2>"$out/build.log"; then
    echo "tools: go list failed; the end of ${out#"$root"/}/build.log:" >&2
    tail -n 40 "$out/build.log" >&2
    exit 1
fi
total=$(wc -l <"$tmp/packages")

# Step 2: one go build for all seven, so the shared packages compile once and both cores stay busy.
# CGO off, as upstream builds these binaries: static, and nothing from the C toolchain needed.
# -v names each package as it is compiled (cached ones are not named): a line every 30 seconds
# says how far it is, so a long first build is not mistaken for a hang.
echo "tools: [2/2] compiling $total packages ($(elapsed)); progress every 30s"
(
    # The sleep is waited for, not run in the foreground, so that the kill below ends it too and
    # nothing keeps the output open after the build.
    trap 'kill "$nap" 2>/dev/null; exit 0' TERM
    while :; do
        sleep 30 &
        nap=$!
        wait "$nap"
        done_=$(grep -c -v -e '^go: ' -e '^#' "$out/build.log" 2>/dev/null || true)
        echo "tools: [2/2] compiling: ${done_:-0} of at most $total packages compiled, $(elapsed) elapsed"
    done
) &
ticker=$!
if ! (cd "$here" && CGO_ENABLED=0 go build -v -ldflags "$ldflags" -o "$tmp/" "${packages[@]}") \
    >"$out/build.log" 2>&1; then
    echo "tools: go build failed; the end of ${out#"$root"/}/build.log:" >&2
    tail -n 40 "$out/build.log" >&2
    exit 1
fi
kill "$ticker" 2>/dev/null || true
wait "$ticker" 2>/dev/null || true
ticker=
# A package path ending in a major version (…/server/v3) gives a binary named after the element
# before it.
mv "$tmp/server" "$tmp/etcd"
for t in "${tools[@]}"; do mv -f "$tmp/$t" "$bin/$t"; done
echo "$want" >"$out/stamp"
echo "tools: built in $(elapsed) into ${bin#"$root"/}"
