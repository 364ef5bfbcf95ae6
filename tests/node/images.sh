#!/usr/bin/env bash
# Builds the node's images without a container engine and imports them into the node's
# containerd (tests/node/up.sh), where pods find them by name with imagePullPolicy IfNotPresent
# or Never: nothing is ever pulled.
#
#   images.sh pause            localhost/pause:1, the sandbox image (tests/node/pause.c, static)
#   images.sh webhook          localhost/flink-memory-webhook:VERSION, from make image's archive
#   images.sh flink VERSION... localhost/flink:VERSION, image/flink/build.sh's image of that release,
#                              and the test jars the JobManager pods mount from the host:
#                              build/node-images/fill.jar (tests/node/java/Fill.java, an agent
#                              that fills the heap) and build/node-images/job-VERSION.jar
#                              (java/com/example/StreamingJob.java, compiled against that
#                              release's lib/)
#
# An image whose archive has not changed since it was imported is not imported again.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
out=$cluster_root/build/node-images
mkdir -p "$out"
image_tools=${FMW_IMAGE_TOOLS_DIR:-$cluster_root/build/image/tools}

# import ARCHIVE NAME: the OCI archive into containerd's k8s.io namespace as NAME (its
# org.opencontainers.image.ref.name is the tag).
import() {
    local archive=$1 name=$2 sum
    sum=$(sha256sum "$archive" | cut -d' ' -f1)
    # The list is read whole before grep looks: grep -q stops at the first match, and ctr,
    # writing line by line, would die of SIGPIPE and fail the pipeline (pipefail).
    if grep -qx "$name" <<<"$("${ctr[@]}" images ls -q 2>/dev/null)" &&
        [ "$(cat "$node_dir/imported-${name//[\/:]/_}" 2>/dev/null)" = "$sum" ]; then
        return 0
    fi
    "${ctr[@]}" images import --base-name "${name%:*}" "$archive" >/dev/null ||
        node_die "ctr could not import $archive as $name"
    grep -qx "$name" <<<"$("${ctr[@]}" images ls -q)" || node_die "$archive did not import as $name"
    echo "$sum" >"$node_dir/imported-${name//[\/:]/_}"
}

pause_image() {
    local dir=$out/pause
    mkdir -p "$dir/rootfs"
    if [ ! -x "$dir/rootfs/pause" ] || [ "$here/pause.c" -nt "$dir/rootfs/pause" ]; then
        ${CC:-cc} -static -O2 -Wall -Wextra -Werror -o "$dir/rootfs/pause" "$here/pause.c"
        strip "$dir/rootfs/pause"
    fi
    "$cluster_root/image/image.sh" tools
    "$image_tools/oci-image" -rootfs "$dir/rootfs" -layout "$dir/oci" -archive "$dir/pause.oci.tar" \
        -created 0 -user 65535:65535 -entrypoint /pause -ref-name 1 \
        -created-by "tests/node/images.sh (tests/node/pause.c, static)" >/dev/null
    import "$dir/pause.oci.tar" localhost/pause:1
}

webhook_image() {
    local version
    version=$(make -s -C "$cluster_root" --no-print-directory print-version)
    make -s -C "$cluster_root" --no-print-directory image >/dev/null
    import "$cluster_root/build/image/flink-memory-webhook.oci.tar" "localhost/flink-memory-webhook:$version"
}

# jar OUT CLASSPATH SOURCE [MANIFEST]: SOURCE compiled for Java 11 into the jar OUT, unless newer.
jar_of() {
    local jar=$1 cp=$2 src=$3 manifest=${4:-} tmp
    [ -f "$jar" ] && [ "$jar" -nt "$src" ] && return 0
    tmp=$(mktemp -d)
    javac --release 11 -nowarn -cp "$cp" -d "$tmp/classes" "$src" || node_die "javac $src failed"
    if [ -n "$manifest" ]; then
        printf '%s\n' "$manifest" >"$tmp/manifest"
        jar --create --file "$jar" --manifest "$tmp/manifest" -C "$tmp/classes" .
    else
        jar --create --file "$jar" -C "$tmp/classes" .
    fi
    rm -rf "$tmp"
}

flink_images() {
    local v lib
    jar_of "$out/fill.jar" "" "$here/java/Fill.java" "Premain-Class: fmw.Fill"
    for v in "$@"; do
        "$cluster_root/image/flink/build.sh" "$v" "$out/flink-$v"
        import "$out/flink-$v/flink.oci.tar" "localhost/flink:$v"
        lib=$out/flink-$v/rootfs/opt/flink/lib
        jar_of "$out/job-$v.jar" "$lib/*" "$here/java/com/example/StreamingJob.java"
    done
}

case ${1:-} in
pause) pause_image ;;
webhook) webhook_image ;;
flink)
    shift
    [ $# -gt 0 ] || node_die "usage: images.sh flink VERSION..."
    flink_images "$@"
    ;;
*) node_die "usage: images.sh pause | webhook | flink VERSION..." ;;
esac
