#!/usr/bin/env bash
# rootfs.sh BINARY OUT: assembles the webhook's minimal root filesystem in OUT: the binary, the
# shared libraries it loads (as ldd resolves them on this Debian system, plus the few that glibc
# and OpenSSL open at run time), the CA certificates, and passwd/group entries for the non-root
# user 65532. The Dockerfile runs this same script in its build stage and copies OUT into a
# `scratch` image, so the image and an engine-less rootfs (image/test-rootfs.sh) hold the same files.
set -euo pipefail

[ $# -eq 2 ] || { echo "usage: rootfs.sh BINARY OUT" >&2; exit 2; }
binary=$1
out=$2
[ -x "$binary" ] || { echo "rootfs: $binary is not an executable" >&2; exit 1; }
command -v ldd >/dev/null || { echo "rootfs: ldd is missing (Debian package libc-bin)" >&2; exit 1; }

rm -rf "$out"
mkdir -p "$out/usr/local/bin" "$out/etc/ssl/certs" "$out/tmp"
chmod 1777 "$out/tmp"
install -m 0755 "$binary" "$out/usr/local/bin/flink-memory-webhook"
# Debug sections are for the build tree, not the image.
if command -v strip >/dev/null; then strip --strip-debug "$out/usr/local/bin/flink-memory-webhook"; fi

# copy_lib PATH: the file PATH resolves to, stored under its name in the directory PATH's
# directory really is (Debian merges /lib into /usr/lib; the symlinks are recreated below).
copy_lib() {
    local dir
    dir=$(readlink -f "$(dirname "$1")")
    mkdir -p "$out$dir"
    cp -L "$1" "$out$dir/$(basename "$1")"
}

# ldd prints "name => /path (addr)" or "/path (addr)" for the loader; vdso has no file.
mapfile -t libs < <(ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}')
# glibc opens libgcc_s for thread cancellation and unwinding.
for extra in /lib/x86_64-linux-gnu/libgcc_s.so.1 /usr/lib/x86_64-linux-gnu/libgcc_s.so.1; do
    [ -e "$extra" ] && { libs+=("$extra"); break; }
done
for lib in "${libs[@]}"; do copy_lib "$lib"; done
# Debian's merged /usr: /lib, /lib64 (where the ELF interpreter is looked up) point into /usr.
for link in lib lib64; do
    if [ -L "/$link" ] && [ -d "$out/usr/$link" ]; then
        ln -s "usr/$link" "$out/$link"
    fi
done

cp -L /etc/ssl/certs/ca-certificates.crt "$out/etc/ssl/certs/ca-certificates.crt"
cat >"$out/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
PASSWD
cat >"$out/etc/group" <<'GROUP'
root:x:0:
nonroot:x:65532:
GROUP
echo 'hosts: files dns' >"$out/etc/nsswitch.conf"

echo "rootfs: $out: $(find "$out" -type f | wc -l) files, $(du -sh "$out" | cut -f1)" \
    "($(printf '%s\n' "${libs[@]}" | wc -l) shared libraries)"
