#!/usr/bin/env bash
# Instructions per request of the whole webhook process — TLS, HTTP, the review, the log line;
# the kernel's part is not counted — under valgrind's callgrind: the running webhook answers
# requests of the 5 KB JobManager pod (bench/fixtures.py) at 20/s over 4 TLS keep-alive
# connections from bench/bin/loadgen, once N and once 2N of them: the difference over N is the
# cost of a request, with start-up, the handshakes and first-use costs cancelled out.
# Deterministic enough to compare two builds on a noisy machine, which the CPU time of
# `make bench` is not.
#
#   bench/server-instructions.sh [WEBHOOK_BINARY] [N]     (defaults: build/bin/flink-memory-webhook, 400)
#
# Needs valgrind, openssl and build/bench/bin/loadgen (make bench-bins). Prints one JSON line.
set -euo pipefail
bin=${1:-build/bin/flink-memory-webhook}
n=${2:-400}
loadgen=build/bench/bin/loadgen
for need in valgrind openssl "$loadgen" "$bin"; do
    command -v "$need" >/dev/null || [ -x "$need" ] || { echo "server-instructions: $need is missing" >&2; exit 2; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 bench/fixtures.py "$work/fx" >/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -keyout "$work/key.pem" -out "$work/cert.pem" \
    -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost 2>/dev/null
# No ConfigMap is read by this fixture; an API server that refuses at once will do.
printf '%s\n' '{"apiVersion":"v1","kind":"Config","current-context":"x",' \
    '"contexts":[{"name":"x","context":{"cluster":"c","user":"u"}}],' \
    '"clusters":[{"name":"c","cluster":{"server":"https://127.0.0.1:1"}}],' \
    '"users":[{"name":"u","user":{"token":"t"}}]}' >"$work/kubeconfig"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# instructions REQUESTS: callgrind's total for a webhook run that answers REQUESTS requests.
instructions() {
    local requests=$1 port out pid
    port=$(free_port)
    out=$work/callgrind.$requests
    valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" --tls-cert-file "$work/cert.pem" \
        --tls-key-file "$work/key.pem" --kubeconfig "$work/kubeconfig" --listen-address 127.0.0.1 \
        --port "$port" --health-port -1 --drain-delay-ms 0 --grace-ms 5000 \
        2>"$work/valgrind.$requests.log" >/dev/null &
    pid=$!
    for _ in $(seq 1 150); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.2; done
    if [ "$requests" -gt 0 ]; then
        "$loadgen" rate --port "$port" --ca "$work/cert.pem" --body "$work/fx/jm-5k.json" --rate 20 \
            --duration $((requests / 20)) --connections 4 --timeout-ms 5000 >"$work/loadgen.json"
        python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(r["ok"] != int(sys.argv[2]))' \
            "$work/loadgen.json" "$requests" || { echo "server-instructions: not every request answered: $(cat "$work/loadgen.json")" >&2; kill "$pid"; exit 1; }
    fi
    kill -TERM "$pid"
    wait "$pid" || true
    awk '/^(summary|totals):/ {print $2; exit}' "$out"
}

once=$(instructions "$n")
twice=$(instructions $((2 * n)))
echo "{\"binary\": \"$bin\", \"requests\": $n, \"instructions_per_request\": $(((twice - once) / n)), \"run_of_${n}\": $once, \"run_of_$((2 * n))\": $twice}"
