#!/usr/bin/env bash
# Starts the test cluster: a real kube-apiserver, etcd, controller manager
# and scheduler as local processes (kwokctl's binary runtime) with two
# simulated nodes (kwok). Prints the kubeconfig to use. Run by make
# cluster-up after the binaries are built.
set -euo pipefail
cd "$(dirname "$0")"
bin=$PWD/bin
name=${CLUSTER_NAME:-runner-test}
export KWOK_WORKDIR=${KWOK_WORKDIR:-$PWD/.work}
kubeconfig=$KWOK_WORKDIR/kubeconfig
mkdir -p "$KWOK_WORKDIR"
# The host as it was before anything here touched it; down.sh restores
# and checks it. A record left by a down that found differences is kept:
# it, not the changed host, is the state to return to.
record=${HOST_RECORD:-$PWD/.host-before.json}
[ -f "$record" ] || "$bin/hoststate" save "$record"
if [ -d "$KWOK_WORKDIR/clusters/$name" ]; then
  # A cluster left by an earlier run starts clean.
  "$bin/kwokctl" delete cluster --name "$name" --kubeconfig "$kubeconfig" >/dev/null 2>&1 || true
fi
"$bin/kwokctl" create cluster --name "$name" --runtime binary \
  --kubeconfig "$kubeconfig" \
  --kube-apiserver-binary "$bin/kube-apiserver" \
  --kube-controller-manager-binary "$bin/kube-controller-manager" \
  --kube-scheduler-binary "$bin/kube-scheduler" \
  --etcd-binary "$bin/etcd" \
  --kwok-controller-binary "$bin/kwok" \
  --config "$PWD/kwok.yaml" \
  --wait 2m --timeout 3m >"$KWOK_WORKDIR/create.log" 2>&1 \
  || { cat "$KWOK_WORKDIR/create.log" >&2; exit 1; }
"$bin/kwokctl" scale node --replicas 2 --name "$name" >>"$KWOK_WORKDIR/create.log" 2>&1
echo "cluster $name is up; use it with: export KUBECONFIG=$kubeconfig"
