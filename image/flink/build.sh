#!/usr/bin/env bash
# build.sh VERSION OUT: a Flink image of that release, built without a container engine, laid out
# as the official image is (README.md here says what it models and what it leaves out):
#
#   OUT/rootfs          the root filesystem
#   OUT/flink.oci.tar   the OCI archive (image/oci's oci-image), tag VERSION
#   OUT/inputs          the hash of everything it was built from
#
# The pieces: Flink's distribution (bin/, conf/, lib/, plugins/) of that release from PyPI's
# apache-flink and apache-flink-libraries packages (tests/real/fetch-flink.sh, cached outside the
# repository); a Java runtime made by jlink from this machine's Debian JDK (cached beside it);
# bash, coreutils and the other programs Flink's scripts and the entrypoint call, with the shared
# libraries they load, copied from this Debian system; the entrypoint, docker-entrypoint.sh here.
# Built once per set of inputs: the result is kept in the cache beside the downloads
# (images/VERSION-HASH, one per release) and OUT is a link to it, so a new checkout reuses it.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
[ $# -eq 2 ] || { echo "usage: build.sh VERSION OUT" >&2; exit 2; }
version=$1
out=$2
[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "flink-image: '$version' is not a Flink release" >&2; exit 2; }
cache=${FLINK_REAL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flink-memory-webhook/pyflink}
tools_dir=${FMW_IMAGE_TOOLS_DIR:-$root/build/image/tools}
say() { echo "flink-image: $*"; }
die() {
    echo "flink-image: $*" >&2
    exit 1
}

# The programs of the image besides Java: what Flink's bin/ scripts (config.sh, jobmanager.sh,
# taskmanager.sh, flink-console.sh, config-parser-utils.sh, bash-java-utils.sh) and the
# entrypoint call, and a few a person running `kubectl exec` expects.
programs=(bash sh cat cut dirname basename readlink realpath ls mkdir rm rmdir mv cp ln chmod
    find xargs sed grep head tail tr wc sort uniq rev tee id uname hostname expr env sleep
    touch date kill timeout flock mktemp true false envsubst setpriv getent awk mawk ps nproc
    du df stat)

javac_path=$(readlink -f "$(command -v javac 2>/dev/null)" 2>/dev/null) ||
    die "javac is missing (default-jdk-headless: scripts/install-deps.sh)"
jdk=$(dirname "$(dirname "$javac_path")")
[ -d "$jdk/jmods" ] || die "$jdk has no jmods: jlink cannot make a runtime from it"
jdk_release=$(sed -n 's/^JAVA_RUNTIME_VERSION="\(.*\)"/\1/p' "$jdk/release")
[ -n "$jdk_release" ] || jdk_release=$("$jdk/bin/java" -version 2>&1 | head -n1 | tr -dc '0-9.+_-')

"$root/tests/real/fetch-flink.sh" "$version" >&2
dist=$cache/$version/dist
[ -f "$(ls "$dist"/lib/flink-dist*.jar 2>/dev/null | head -n1)" ] || die "no flink-dist jar in $dist/lib"

# The Java runtime: the modules of Java SE, the JDK's management and diagnostic commands (jcmd),
# and what Flink loads beyond java.se (jdk.unsupported for sun.misc.Unsafe, the EC and DNS
# providers, zipfs for its plugins).
modules=java.se,jdk.unsupported,jdk.jcmd,jdk.attach,jdk.management,jdk.management.agent
modules+=,jdk.crypto.ec,jdk.naming.dns,jdk.zipfs,jdk.localedata,jdk.charsets
jre=$cache/../jre/$jdk_release
if [ ! -x "$jre/bin/java" ] || [ "$(cat "$jre.modules" 2>/dev/null)" != "$modules" ]; then
    say "jlink of $jdk ($jdk_release): $modules"
    rm -rf "$jre" "$jre.modules"
    mkdir -p "$(dirname "$jre")"
    "$jdk/bin/jlink" --add-modules "$modules" --strip-debug --no-header-files --no-man-pages \
        --output "$jre.tmp" || die "jlink failed"
    mv "$jre.tmp" "$jre"
    echo "$modules" >"$jre.modules"
fi

# Rebuilt only when an input changed.
inputs=$({
    echo "flink $version"
    echo "jre $jdk_release $modules"
    sha256sum "$here/build.sh" "$here/docker-entrypoint.sh"
    for p in "${programs[@]}"; do
        f=$(type -P "$p") || die "$p is missing on this machine"
        echo "$p $(readlink -f "$f") $(stat -c %Y "$(readlink -f "$f")")"
    done
    ls -l "$dist/lib"
} | sha256sum | cut -d' ' -f1)
built=$(cd "$cache/.." && pwd)/images/$version-${inputs:0:16}
link_out() {
    rm -rf "$out"
    mkdir -p "$(dirname "$out")"
    ln -s "$built" "$out"
}
if [ -f "$built/flink.oci.tar" ] && [ "$(cat "$built/inputs" 2>/dev/null)" = "$inputs" ]; then
    [ "$(readlink "$out" 2>/dev/null)" = "$built" ] || link_out
    say "$version: up to date (${out#"$root"/}/flink.oci.tar)"
    exit 0
fi
# Other builds of this release are outdated.
rm -rf "$(dirname "$built")/$version"-*
out=$built.tmp
rootfs=$out/rootfs
rm -rf "$out"
mkdir -p "$rootfs"/{usr/bin,usr/sbin,usr/lib,etc,tmp,opt/flink,opt/java,root,proc,sys,dev}
chmod 1777 "$rootfs/tmp"
# Debian's merged /usr.
for link in bin sbin lib lib64; do
    mkdir -p "$rootfs/usr/$link"
    ln -s "usr/$link" "$rootfs/$link"
done

# copy_file PATH: the file PATH resolves to, at PATH's own place (a program under its name).
copy_file() {
    local src=$1 real dir
    real=$(readlink -f "$src")
    dir=$(readlink -f "$(dirname "$src")")
    mkdir -p "$rootfs$dir"
    cp -L "$real" "$rootfs$dir/$(basename "$src")"
}
elf_files=()
for p in "${programs[@]}"; do
    f=$(type -P "$p")
    copy_file "$f"
    elf_files+=("$f")
done

cp -a "$jre" "$rootfs/opt/java/openjdk"
while IFS= read -r f; do elf_files+=("$f"); done < <(find "$jre" -type f \( -name '*.so' -o -perm -u+x \))
# The shared libraries all of them load, as ldd resolves them here; glibc's libgcc_s (thread
# cancellation) besides. A library ldd cannot find is one the runtime never loads here (say, the
# X11 ones of java.desktop's AWT): the image leaves it out as the official image's headless JRE.
mapfile -t libs < <(for f in "${elf_files[@]}"; do ldd "$f" 2>/dev/null; done |
    awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u)
for extra in /usr/lib/x86_64-linux-gnu/libgcc_s.so.1; do [ -e "$extra" ] && libs+=("$extra"); done
for lib in "${libs[@]}"; do
    case $lib in "$jre"/*) continue ;; esac
    copy_file "$lib"
done

# Flink, as the official image has it at /opt/flink (opt/ is left out: jars that are not on any
# classpath until a user copies them, 33-42 MB per release).
for d in bin conf lib plugins; do cp -a "$dist/$d" "$rootfs/opt/flink/"; done
mkdir -p "$rootfs/opt/flink/log"
# The official image's build makes the default conf listen beyond localhost: the REST and RPC
# bind addresses 0.0.0.0 and no taskmanager.host. Up to 1.18 with sed over flink-conf.yaml; from
# 1.19 through Flink's own config-parser-utils.sh over config.yaml (run here with this runtime).
conf=$rootfs/opt/flink/conf
if [ -f "$conf/flink-conf.yaml" ]; then
    sed -i -e 's/rest.address: localhost/rest.address: 0.0.0.0/g' \
        -e 's/rest.bind-address: localhost/rest.bind-address: 0.0.0.0/g' \
        -e 's/jobmanager.bind-host: localhost/jobmanager.bind-host: 0.0.0.0/g' \
        -e 's/taskmanager.bind-host: localhost/taskmanager.bind-host: 0.0.0.0/g' \
        -e '/taskmanager.host: localhost/d' "$conf/flink-conf.yaml"
else
    JAVA_HOME=$jre FLINK_HOME=$rootfs/opt/flink bash "$rootfs/opt/flink/bin/config-parser-utils.sh" \
        "$conf" "$rootfs/opt/flink/bin" "$rootfs/opt/flink/lib" \
        -repKV rest.address,localhost,0.0.0.0 -repKV rest.bind-address,localhost,0.0.0.0 \
        -repKV jobmanager.bind-host,localhost,0.0.0.0 -repKV taskmanager.bind-host,localhost,0.0.0.0 \
        -rmKV taskmanager.host=localhost >/dev/null || die "config-parser-utils.sh failed on $conf"
fi
# The official image owns /opt/flink by flink; this image's layer is owned by root (image/oci
# writes 0:0), so the directories the JobManager writes are open to it instead.
chmod 1777 "$rootfs/opt/flink/log"
chmod -R a+rwX "$rootfs/opt/flink/conf"
install -m 0755 "$here/docker-entrypoint.sh" "$rootfs/docker-entrypoint.sh"

cat >"$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/bash
flink:x:9999:9999::/opt/flink:/bin/bash
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
cat >"$rootfs/etc/group" <<'EOF'
root:x:0:
flink:x:9999:
nogroup:x:65534:
EOF
echo 'hosts: files dns' >"$rootfs/etc/nsswitch.conf"
echo 'passwd: files' >>"$rootfs/etc/nsswitch.conf"
echo 'group: files' >>"$rootfs/etc/nsswitch.conf"

"$root/image/image.sh" tools >&2
digest=$("$tools_dir/oci-image" -rootfs "$rootfs" -layout "$out/oci" -archive "$out/flink.oci.tar" \
    -created 0 -user 0:0 -entrypoint /docker-entrypoint.sh -cmd help -workdir /opt/flink \
    -env PATH=/opt/flink/bin:/opt/java/openjdk/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    -env JAVA_HOME=/opt/java/openjdk -env FLINK_HOME=/opt/flink -env LANG=C.UTF-8 \
    -expose 6123/tcp -expose 8081/tcp -ref-name "$version" \
    -label "org.opencontainers.image.title=flink (flink-memory-webhook's test image)" \
    -label "org.opencontainers.image.version=$version" \
    -created-by "image/flink/build.sh $version (Flink from PyPI, jlink of $jdk_release, Debian programs)") ||
    die "oci-image failed"
echo "$inputs" >"$out/inputs"
mv "$out" "$built"
out=$2
link_out
say "$version: ${out#"$root"/}/flink.oci.tar $digest ($(du -sh "$built/rootfs" | cut -f1), Java $jdk_release)"
