#!/usr/bin/env bash
# Stops the test cluster and removes its state.
set -euo pipefail
cd "$(dirname "$0")"
name=${CLUSTER_NAME:-runner-test}
export KWOK_WORKDIR=${KWOK_WORKDIR:-$PWD/.work}
if [ -x bin/kwokctl ] && [ -d "$KWOK_WORKDIR/clusters/$name" ]; then
  out=$(bin/kwokctl delete cluster --name "$name" --kubeconfig "$KWOK_WORKDIR/kubeconfig" 2>&1) \
    || { echo "$out" >&2; exit 1; }
fi
rm -rf "$KWOK_WORKDIR"
echo "cluster $name is down"
