#!/usr/bin/env bash
# Starts the test cluster: a real kube-apiserver, etcd, controller manager
# and scheduler as local processes (kwokctl's binary runtime), two
# simulated nodes (kwok) and one real node (node-up.sh: containerd, the
# kubelet, kube-proxy, CoreDNS). Prints the kubeconfig to use. Run by make
# cluster-up after the binaries are built. REAL_NODE=0 leaves the real
# node out, on a machine that cannot run containers.
set -euo pipefail
cd "$(dirname "$0")"
. ./node.env
bin=$PWD/bin
name=$CLUSTER_NAME
export KWOK_WORKDIR
kubeconfig=$KWOK_WORKDIR/kubeconfig
pki=$KWOK_WORKDIR/clusters/$name/pki
mkdir -p "$KWOK_WORKDIR"
# The host as it was before anything here touched it; down.sh restores
# and checks it. A record left by a down that found differences is kept:
# it, not the changed host, is the state to return to.
record=${HOST_RECORD:-$HOST_RECORD_DEFAULT}
[ -f "$record" ] || "$bin/hoststate" save "$record"
if [ -d "$KWOK_WORKDIR/clusters/$name" ]; then
  # A cluster left by an earlier run starts clean.
  "$bin/kwokctl" delete cluster --name "$name" --kubeconfig "$kubeconfig" >/dev/null 2>&1 || true
fi
# kwok.yaml, and the flags that let the API server reach the real node's
# kubelet (by its address on the bridge, with the cluster CA's admin
# credentials) and keep kwok to the simulated nodes (those created with
# its annotation), and the Service range the real node routes. Pods reach
# the API server as the kubernetes Service: it advertises the host's
# address on the bridge (created later by node-up.sh), and its certificate
# names that address, the Service's and the Service's names.
config=$KWOK_WORKDIR/kwok.yaml
service_ip=${SERVICE_CIDR%.*}.1
cat kwok.yaml - >"$config" <<EOF
---
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  kubeApiserverCertSANs:
    - $BRIDGE_IP
    - $service_ip
    - kubernetes
    - kubernetes.default
    - kubernetes.default.svc
    - kubernetes.default.svc.cluster.local
componentsPatches:
  - name: kube-apiserver
    extraArgs:
      - {key: advertise-address, value: "$BRIDGE_IP"}
      - {key: kubelet-client-certificate, value: "$pki/admin.crt"}
      - {key: kubelet-client-key, value: "$pki/admin.key"}
      - {key: kubelet-preferred-address-types, value: InternalIP}
      - {key: service-cluster-ip-range, value: "$SERVICE_CIDR"}
  - name: kube-controller-manager
    extraArgs:
      - {key: service-cluster-ip-range, value: "$SERVICE_CIDR"}
  - name: kwok-controller
    extraArgs:
      - {key: manage-all-nodes, value: "false", override: true}
      - {key: manage-nodes-with-annotation-selector, value: "kwok.x-k8s.io/node=fake"}
EOF
"$bin/kwokctl" create cluster --name "$name" --runtime binary \
  --kubeconfig "$kubeconfig" \
  --kube-apiserver-binary "$bin/kube-apiserver" \
  --kube-controller-manager-binary "$bin/kube-controller-manager" \
  --kube-scheduler-binary "$bin/kube-scheduler" \
  --etcd-binary "$bin/etcd" \
  --kwok-controller-binary "$bin/kwok" \
  --config "$config" \
  --wait 2m --timeout 3m >"$KWOK_WORKDIR/create.log" 2>&1 \
  || { cat "$KWOK_WORKDIR/create.log" >&2; exit 1; }
# The simulated nodes: kwok answers their kubelet API on this machine, so
# their addresses are on loopback (the API server dials InternalIP), and a
# taint keeps off them every pod that does not ask for them: a pod lands on
# the real node unless it tolerates runner.perf/simulated.
"$bin/kwokctl" scale node --replicas 2 --name "$name" \
  --param '.nodeIPs=["127.0.0.1"]' --param '.podCIDRs=["10.215.0.0/24"]' >>"$KWOK_WORKDIR/create.log" 2>&1
server=$(sed -n 's/^ *server: //p' "$kubeconfig" | head -1)
api() {
  curl -sSf --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" "$@"
}
for node in $(api "$server/api/v1/nodes?labelSelector=type%3Dkwok" | tr -d ' \n' | grep -o '"metadata":{"name":"[^"]*"' | cut -d'"' -f6); do
  api -X PATCH -H 'Content-Type: application/merge-patch+json' \
    -d '{"spec":{"taints":[{"key":"runner.perf/simulated","value":"true","effect":"NoSchedule"}]}}' \
    "$server/api/v1/nodes/$node" >/dev/null
done
if [ "${REAL_NODE:-1}" != 0 ]; then
  ./node-up.sh || { echo "the real node did not start; make cluster-down stops what did" >&2; exit 1; }
fi
echo "cluster $name is up; use it with: export KUBECONFIG=$kubeconfig"
