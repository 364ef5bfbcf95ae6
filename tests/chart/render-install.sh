#!/usr/bin/env bash
# Prints manifests/install.yaml: the chart rendered for a plain `kubectl apply` install. TLS comes
# from cert-manager (a static file cannot carry a generated key), the namespace is part of the
# file (labelled Pod Security restricted), and matchConditions are on (Kubernetes 1.30+).
# `make manifests` writes the file; tests/chart/test_chart.py checks that it is current.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
helm=${FMW_HELM:-${FMW_TOOLS_DIR:-$root/build/tools}/bin/helm}
cat <<'HEADER'
# flink-memory-webhook: static install, rendered from charts/flink-memory-webhook by
# `make manifests` (tests/chart/render-install.sh). Do not edit: change the chart.
#
# Needs Kubernetes 1.30+ and cert-manager (it issues the serving certificate and injects the CA).
#   kubectl apply -f manifests/install.yaml
# Without cert-manager, install the chart with Helm instead (tls.mode=generate is its default).
HEADER
"$helm" template flink-memory-webhook "$root/charts/flink-memory-webhook" \
    --namespace flink-memory-webhook --kube-version 1.30.0 \
    --set tls.mode=cert-manager --set createNamespace=true
