#!/usr/bin/env bash
# Fetches Flink's release files (bin/, conf/, lib/, plugins/, opt/, log/) for the given Flink
# versions from PyPI's pyflink packages and unpacks each into a FLINK_HOME-like tree:
#
#   $FLINK_REAL_CACHE/<version>/dist/{bin,conf,lib,plugins,opt,log}
#
# FLINK_REAL_CACHE defaults to ${XDG_CACHE_HOME:-~/.cache}/flink-memory-webhook/pyflink, outside
# the repository. Nothing fetched here is ever committed.
#
# Where the files are: apache-flink's wheel has pyflink/bin (the start scripts) and pyflink/conf
# (the distribution's default conf); from 1.13.6 on, the jars are in apache-flink-libraries: an
# sdist up to 2.2 (deps/lib, deps/bin with bash-java-utils.jar, deps/plugins, deps/opt), a wheel
# from 2.3 (pyflink/lib, pyflink/bin, ...); before that (1.11, 1.12) apache-flink's wheel carries
# them itself under pyflink/lib, pyflink/bin, pyflink/plugins, pyflink/opt.
# apache-flink's wheels are per Python version and platform, and old lines stop at an old
# Python: the Python versions below are tried in turn; any of them carries the same files.
#
# Usage: fetch-flink.sh VERSION...      (e.g. 1.18.1 2.0.0)
#        fetch-flink.sh --served        (prints the versions of apache-flink PyPI serves, cached)
set -euo pipefail

CACHE="${FLINK_REAL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flink-memory-webhook/pyflink}"
PIP=(python3 -m pip)
mkdir -p "$CACHE"

if [ "${1:-}" = "--served" ]; then
    list="$CACHE/served-versions.txt"
    # One look-up a day at most.
    if [ ! -s "$list" ] || [ -n "$(find "$list" -mmin +1440 2>/dev/null)" ]; then
        "${PIP[@]}" index versions apache-flink 2>/dev/null |
            sed -n 's/^Available versions: //p' | tr -d ' ' | tr ',' '\n' | grep . > "$list.tmp"
        if [ -s "$list.tmp" ]; then mv "$list.tmp" "$list"; else rm -f "$list.tmp"; fi
    fi
    [ -s "$list" ] || { echo "fetch-flink: cannot list apache-flink's versions" >&2; exit 1; }
    cat "$list"
    exit 0
fi

unpack_wheel() { # unpack_wheel WHEEL DIR: its pyflink/{bin,conf,lib,plugins,opt,log}
    python3 - "$1" "$2" <<'PY'
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
for n in z.namelist():
    parts = n.split("/")
    if len(parts) > 2 and parts[0] == "pyflink" and parts[1] in ("bin", "conf", "lib", "plugins", "opt", "log"):
        z.extract(n, sys.argv[2])
PY
}

fetch_one() {
    local v="$1" dir="$CACHE/$1" py got=""
    if [ -f "$dir/complete" ]; then
        return 0
    fi
    echo "fetch-flink: Flink $v: downloading apache-flink $v from PyPI" >&2
    local t0=$SECONDS
    rm -rf "$dir/wheels" "$dir/dist" "$dir/unpack" "$dir/complete"
    mkdir -p "$dir/wheels" "$dir/unpack" "$dir/dist"
    for py in 3.11 3.10 3.8 3.7 3.6; do
        if "${PIP[@]}" download -q --no-deps --platform manylinux2014_x86_64 --only-binary=:all: \
                --python-version "$py" -d "$dir/wheels" "apache-flink==$v" >/dev/null 2>&1; then
            got=yes
            break
        fi
    done
    if [ -z "$got" ]; then
        echo "fetch-flink: no x86_64 wheel of apache-flink $v found for Python 3.6-3.11" >&2
        return 1
    fi
    local whl
    whl=$(ls "$dir"/wheels/apache_flink-*.whl | head -n1)
    unpack_wheel "$whl" "$dir/unpack/wheel"
    local w="$dir/unpack/wheel/pyflink"
    cp -a "$w/bin" "$w/conf" "$dir/dist/"
    for sub in lib plugins opt log; do
        if [ -d "$w/$sub" ]; then cp -a "$w/$sub" "$dir/dist/"; fi
    done
    if ! ls "$dir"/dist/lib/flink-dist*.jar >/dev/null 2>&1; then
        echo "fetch-flink: Flink $v: downloading apache-flink-libraries $v (the jars) from PyPI" >&2
        # An sdist up to 2.2 (pip prepares its metadata, a short build, before it keeps it).
        "${PIP[@]}" download -q --no-deps -d "$dir/wheels" "apache-flink-libraries==$v" >/dev/null ||
            { echo "fetch-flink: pip could not download apache-flink-libraries $v" >&2; return 1; }
        local lib deps
        lib=$(ls "$dir"/wheels/apache[-_]flink[-_]libraries-* | head -n1)
        case "$lib" in
            *.whl)  # from 2.3 on, a wheel: pyflink/{lib,bin,plugins,opt}
                unpack_wheel "$lib" "$dir/unpack/libraries"
                deps="$dir/unpack/libraries/pyflink" ;;
            *.tar.gz)  # before, an sdist: deps/{lib,bin,plugins,opt}
                tar -xzf "$lib" -C "$dir/unpack" --wildcards '*/deps/*' ||
                    { echo "fetch-flink: cannot unpack $lib" >&2; return 1; }
                deps=$(ls -d "$dir"/unpack/*/deps | head -n1) ;;
            *)
                echo "fetch-flink: no apache-flink-libraries $v file" >&2; return 1 ;;
        esac
        [ -d "$deps/lib" ] || { echo "fetch-flink: $lib has no lib/" >&2; return 1; }
        mkdir -p "$dir/dist/lib" "$dir/dist/plugins" "$dir/dist/opt"
        cp -a "$deps/lib/." "$dir/dist/lib/"
        if [ -d "$deps/bin" ]; then cp -a "$deps/bin/." "$dir/dist/bin/"; fi
        if [ -d "$deps/plugins" ]; then cp -a "$deps/plugins/." "$dir/dist/plugins/"; fi
        if [ -d "$deps/opt" ]; then cp -a "$deps/opt/." "$dir/dist/opt/"; fi
    fi
    mkdir -p "$dir/dist/log" "$dir/dist/plugins" "$dir/dist/opt"
    rm -f "$dir/dist/log/empty.txt"
    # The release tarball's scripts are executable; the wheel's zip entries may not say so.
    chmod 0755 "$dir"/dist/bin/*
    if ! ls "$dir"/dist/lib/flink-dist*.jar >/dev/null 2>&1; then
        echo "fetch-flink: Flink $v: no lib/flink-dist*.jar after unpacking" >&2
        return 1
    fi
    rm -rf "$dir/wheels" "$dir/unpack"
    touch "$dir/complete"
    echo "fetch-flink: Flink $v: ready in $((SECONDS - t0)) s" >&2
}

rc=0
for v in "$@"; do
    fetch_one "$v" || rc=1
done
exit $rc
