#!/usr/bin/env bash
# Stops the test cluster, removes its state, and restores the host to
# what up.sh recorded (failing, with each difference, when it cannot).
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
# The host as up.sh found it: sysctls set back, then every difference
# named; the record stays until the host matches it.
record=${HOST_RECORD:-$PWD/.host-before.json}
if [ -f "$record" ] && [ -x bin/hoststate ]; then
  bin/hoststate restore "$record"
  bin/hoststate check "$record"
  rm -f "$record"
fi
