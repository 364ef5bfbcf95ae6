#!/usr/bin/env bash
# image.sh: the webhook's OCI image, built and pushed without a container engine.
#
#   image/image.sh tools                 builds oci-image (image/oci) and crane into build/image/tools
#   image/image.sh build ROOTFS OUT      OUT/oci (an OCI image layout), OUT/flink-memory-webhook.oci.tar
#                                        (the same as an OCI archive) and OUT/digest, from ROOTFS
#                                        (image/rootfs.sh)
#   image/image.sh push OUT IMAGE        pushes OUT/oci to IMAGE (REGISTRY/NAME:TAG); says the
#                                        pushed reference, REGISTRY/NAME@sha256:...
#
# Why go-containerregistry: one well-kept library and its command, crane, do all of it without a
# daemon: the image model and digests (our image/oci/main.go lays out the root filesystem as one
# reproducible layer), push, pull, inspection, validation, and the registry the tests serve on
# 127.0.0.1 (`crane registry serve`). umoci builds but cannot push, skopeo pushes but cannot
# build; the pair would still need a registry for the tests. Both are pinned in image/oci/go.mod
# and built from the Go module proxy like the control plane's tools.
#
# Environment (build): VERSION (label org.opencontainers.image.version), SOURCE_DATE_EPOCH (the
# creation time and every file's mtime; default: the last commit's time), IMAGE_SOURCE (label
# org.opencontainers.image.source; default: the git remote origin when it is a URL).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
tools_dir=${FMW_IMAGE_TOOLS_DIR:-$root/build/image/tools}

say() { echo "image: $*"; }
die() {
    echo "image: $*" >&2
    exit 1
}

# tools: oci-image and crane, rebuilt only when go.mod, go.sum, main.go or Go change.
tools() {
    command -v go >/dev/null || die "go is not installed (Go >= 1.26 is needed)"
    local want have
    want=$({ go env GOVERSION; cat "$here/oci/go.mod" "$here/oci/go.sum" "$here/oci/main.go"; } | sha256sum | cut -d' ' -f1)
    have=$(cat "$tools_dir/stamp" 2>/dev/null || true)
    if [ "$want" = "$have" ] && [ -x "$tools_dir/oci-image" ] && [ -x "$tools_dir/crane" ]; then
        return 0
    fi
    say "building oci-image and crane (go-containerregistry, image/oci/go.mod)"
    mkdir -p "$tools_dir"
    if ! (cd "$here/oci" && CGO_ENABLED=0 go build -trimpath -o "$tools_dir/oci-image" . &&
        CGO_ENABLED=0 go build -trimpath -o "$tools_dir/crane" github.com/google/go-containerregistry/cmd/crane) \
        >"$tools_dir/build.log" 2>&1; then
        tail -n 20 "$tools_dir/build.log" >&2
        die "go build failed (log: ${tools_dir#"$root"/}/build.log)"
    fi
    echo "$want" >"$tools_dir/stamp"
}

# source_url: IMAGE_SOURCE, else origin's URL without credentials when it is one.
source_url() {
    if [ -n "${IMAGE_SOURCE:-}" ]; then
        echo "$IMAGE_SOURCE"
        return
    fi
    local url
    url=$(git -C "$root" remote get-url origin 2>/dev/null || true)
    case $url in
    https://* | http://* | ssh://* | git://*) sed -E 's#^([a-z]+://)[^@/]*@#\1#' <<<"$url" ;;
    esac
}

build() {
    local rootfs=$1 out=$2 epoch revision source digest
    [ -x "$rootfs/usr/local/bin/flink-memory-webhook" ] ||
        die "$rootfs has no usr/local/bin/flink-memory-webhook (make image-rootfs builds it)"
    tools
    epoch=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || echo 0)}
    [[ $epoch =~ ^[0-9]+$ ]] || die "SOURCE_DATE_EPOCH must be Unix seconds, not '$epoch'"
    revision=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)
    # A tree with changes is not the commit: say so rather than lie about the revision.
    if [ "$revision" != unknown ] && [ -n "$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
        revision+=-dirty
    fi
    source=$(source_url)
    local args=(-rootfs "$rootfs" -layout "$out/oci" -archive "$out/flink-memory-webhook.oci.tar"
        -created "$epoch" -user 65532:65532 -entrypoint /usr/local/bin/flink-memory-webhook
        -expose 8443/tcp -expose 8080/tcp
        -label "org.opencontainers.image.title=flink-memory-webhook"
        -label "org.opencontainers.image.version=${VERSION:?VERSION is not set}"
        -label "org.opencontainers.image.revision=$revision"
        -ref-name "$VERSION")
    [ -z "$source" ] || args+=(-label "org.opencontainers.image.source=$source")
    mkdir -p "$out"
    digest=$("$tools_dir/oci-image" "${args[@]}") || die "oci-image failed"
    echo "$digest" >"$out/digest"
    say "${out#"$root"/}/flink-memory-webhook.oci.tar: $digest (version $VERSION, revision $revision)"
    [ -n "$source" ] || say "no org.opencontainers.image.source label: origin is not a URL (set IMAGE_SOURCE=URL)"
}

push() {
    local out=$1 image=$2 log ref
    [ -n "$image" ] || die "make image-push needs IMAGE=REGISTRY/NAME:TAG (for example IMAGE=registry.example/flink-memory-webhook:0.1.0)"
    [ -f "$out/oci/index.json" ] || die "no image in ${out#"$root"/}/oci: run make image first"
    tools
    log=$(mktemp)
    # crane retries a refused connection for a while; two minutes is the most a push waits.
    if ! ref=$(timeout 120 "$tools_dir/crane" push "$out/oci" "$image" 2>"$log"); then
        local why
        why=$(grep -v "^[[:space:]]*$" "$log" | tail -n 1 | sed "s/^Error: //")
        rm -f "$log"
        die "could not push to $image: ${why:-timed out after 120s}"
    fi
    rm -f "$log"
    say "pushed $ref"
}

case ${1:-} in
tools) tools ;;
build)
    [ $# -eq 3 ] || die "usage: image.sh build ROOTFS OUT"
    build "$2" "$3"
    ;;
push)
    [ $# -eq 3 ] || die "usage: image.sh push OUT IMAGE"
    push "$2" "$3"
    ;;
*) die "usage: image.sh tools | build ROOTFS OUT | push OUT IMAGE" ;;
esac
