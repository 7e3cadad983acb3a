#!/usr/bin/env bash
# Stops the test cluster (the real node first, then the control plane and
# the simulated nodes), removes its state, and restores the host to what
# up.sh recorded, failing, with each difference, when it cannot. Each part
# runs even when one before it failed.
set -uo pipefail
cd "$(dirname "$0")"
. ./node.env
export KWOK_WORKDIR
status=0
./node-down.sh || status=1
if [ -x bin/kwokctl ] && [ -d "$KWOK_WORKDIR/clusters/$CLUSTER_NAME" ]; then
  out=$(bin/kwokctl delete cluster --name "$CLUSTER_NAME" --kubeconfig "$KWOK_WORKDIR/kubeconfig" 2>&1) \
    || { echo "$out" >&2; status=1; }
fi
rm -rf "$KWOK_WORKDIR"
echo "cluster $CLUSTER_NAME is down"
# The host as up.sh found it: what the node left undone (mounts, network
# namespaces, interfaces, chains, cgroups, directories, sysctls), then
# every remaining difference named; the record stays until the host
# matches it.
record=${HOST_RECORD:-$HOST_RECORD_DEFAULT}
if [ -f "$record" ] && [ -x bin/hoststate ]; then
  bin/hoststate restore "$record" || status=1
  if bin/hoststate check "$record"; then
    rm -f "$record"
  else
    status=1
  fi
fi
exit $status
