# Sourced by the scripts in tests/cluster/: paths and ports of the local control plane.
# shellcheck shell=bash disable=SC2034 # the variables are used by the scripts that source this

cluster_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tools_bin=${FMW_TOOLS_DIR:-$cluster_root/build/tools}/bin
cluster_dir=$cluster_root/build/cluster
pid_dir=$cluster_dir/pids
log_dir=$cluster_dir/logs
pki_dir=$cluster_dir/pki
kubeconfig=$cluster_dir/kubeconfig

# Loopback ports, all below Linux's ephemeral range (32768-60999) so that no outgoing connection
# takes one first. FMW_CLUSTER_PORT_BASE moves them all at once; a running control plane's base is
# remembered, so that later commands find it without being told again.
port_base=${FMW_CLUSTER_PORT_BASE:-$(cat "$cluster_dir/port-base" 2>/dev/null || echo 26000)}
if ! [[ $port_base =~ ^[0-9]+$ ]] || [ "$port_base" -lt 1024 ] || [ "$port_base" -gt 64000 ]; then
    echo "cluster: FMW_CLUSTER_PORT_BASE must be a number from 1024 to 64000" >&2
    exit 1
fi
etcd_port=$((port_base + 379))
etcd_peer_port=$((port_base + 380))
apiserver_port=$((port_base + 443))
kcm_port=$((port_base + 257))
apiserver_url=https://127.0.0.1:$apiserver_port

# The processes up.sh starts, in start order; down.sh stops them in reverse.
components=(etcd kube-apiserver kube-controller-manager)

say() { echo "cluster: $*"; }
die() {
    echo "cluster: $*" >&2
    exit 1
}

# ---- processes, for up.sh/down.sh here and tests/node's: each in its own session (a Ctrl-C to
# make does not reach it), its output in DIR/logs/NAME.log, its pid and program in
# DIR/pids/NAME.pid and NAME.exe ----

# proc_start DIR NAME PROGRAM ARGS...
proc_start() {
    local dir=$1 name=$2 prog
    prog=$(command -v "$3") || {
        echo "${dir##*/}: $3 is not installed" >&2
        exit 1
    }
    shift 3
    setsid "$prog" "$@" </dev/null >"$dir/logs/$name.log" 2>&1 &
    local pid=$! t
    echo "$pid" >"$dir/pids/$name.pid"
    echo "$prog" >"$dir/pids/$name.exe"
    # Until the forked shell has exec'd (before that its cmdline is this script's, and proc_pid
    # would take it for a recycled pid: on a loaded machine the window is long enough to see).
    for ((t = 0; t < 200; t++)); do
        proc_pid "$dir" "$name" >/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || return 0 # gone already: proc_await says so with its log
        sleep 0.05
    done
}

# proc_pid DIR NAME: the pid recorded for NAME while that process still runs the program recorded
# with it (a recycled pid belongs to someone else and is never touched); nothing otherwise.
proc_pid() {
    local pid want exe
    pid=$(cat "$1/pids/$2.pid" 2>/dev/null) || return 1
    want=$(cat "$1/pids/$2.exe" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    # The first word, or the second while the pid is still the setsid that proc_start runs and
    # has not yet exec'd the program (a moment, longer on a loaded machine).
    exe=$(tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline" | head -n2) || return 1
    case $exe in
    "$want" | "$want"$'\n'* | setsid$'\n'"$want") echo "$pid" ;;
    *) return 1 ;;
    esac
}

# proc_await DIR NAME SECONDS CHECK...: polls CHECK four times a second until it succeeds; ends
# the script with the end of NAME's log as soon as NAME has exited, or after SECONDS.
proc_await() {
    local dir=$1 name=$2 limit=$3 i
    shift 3
    for ((i = 0; i < limit * 4; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        proc_pid "$dir" "$name" >/dev/null || {
            echo "${dir##*/}: $name exited; the end of ${dir#"$cluster_root"/}/logs/$name.log:" >&2
            tail -n 15 "$dir/logs/$name.log" >&2
            exit 1
        }
        sleep 0.25
    done
    echo "${dir##*/}: $name not ready after ${limit}s; the end of ${dir#"$cluster_root"/}/logs/$name.log:" >&2
    tail -n 15 "$dir/logs/$name.log" >&2
    exit 1
}

# proc_stop DIR NAME: TERM, up to 15 s for a graceful stop, then KILL. Fails when NAME was not
# running.
proc_stop() {
    local pid t
    pid=$(proc_pid "$1" "$2") || return 1
    kill -TERM "$pid" 2>/dev/null
    for ((t = 0; t < 60; t++)); do
        proc_pid "$1" "$2" >/dev/null || return 0
        sleep 0.25
    done
    kill -KILL "$pid" 2>/dev/null
    sleep 0.2
}

# pid_of NAME: a control plane component's pid (proc_pid).
pid_of() { proc_pid "$cluster_dir" "$1"; }

# ---- certificates, for up.sh and tests/node/up.sh ----
gen_key() { openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null; }

# sign NAME SUBJECT EXTENSION...: a key and a certificate signed by the CA, valid for 7 days.
sign() {
    local name=$1 subject=$2
    shift 2
    local ext=() e
    for e in "$@"; do ext+=(-addext "$e"); done
    gen_key "$pki_dir/$name.key"
    openssl req -new -key "$pki_dir/$name.key" -subj "$subject" "${ext[@]}" \
        -out "$pki_dir/$name.csr" 2>/dev/null
    openssl x509 -req -in "$pki_dir/$name.csr" -CA "$pki_dir/ca.crt" -CAkey "$pki_dir/ca.key" \
        -CAcreateserial -copy_extensions copyall -days 7 -out "$pki_dir/$name.crt" 2>/dev/null
    rm -f "$pki_dir/$name.csr"
}

# write_kubeconfig FILE USER: a kubeconfig for the apiserver with USER's client certificate inline.
write_kubeconfig() {
    local b64="base64 -w0"
    cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: fmw-local
  cluster:
    server: $apiserver_url
    certificate-authority-data: $($b64 <"$pki_dir/ca.crt")
users:
- name: $2
  user:
    client-certificate-data: $($b64 <"$pki_dir/$2.crt")
    client-key-data: $($b64 <"$pki_dir/$2.key")
contexts:
- name: fmw-local
  context:
    cluster: fmw-local
    user: $2
current-context: fmw-local
EOF
    chmod 600 "$1"
}

# port_in_use PORT: true if something accepts connections on 127.0.0.1:PORT.
port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# apiserver_ready: true if /readyz answers ok to the admin client certificate.
apiserver_ready() {
    [ "$(curl -s --max-time 5 --cacert "$pki_dir/ca.crt" --cert "$pki_dir/admin.crt" \
        --key "$pki_dir/admin.key" "$apiserver_url/readyz" 2>/dev/null)" = ok ]
}

# cluster_running: true if every component we started is alive and the apiserver is ready.
cluster_running() {
    local c
    for c in "${components[@]}"; do pid_of "$c" >/dev/null || return 1; done
    apiserver_ready
}
