#!/usr/bin/env bash
# Starts the test cluster's real node beside the simulated ones: containerd
# (Debian's, with a config, root, state and socket of its own), a bridge
# for the pod network, the kubelet, kube-proxy in iptables mode and CoreDNS
# on the bridge address. Run by up.sh once the control plane is up; needs
# root and what .ci/run installs (containerd, runc, containernetworking-
# plugins, iptables, conntrack). down.sh (node-down.sh) stops it and puts
# the host back.
#
# The pod network stays on this machine: pods get addresses on a bridge
# of their own, nothing is masqueraded, and a rule drops whatever would be
# forwarded between the bridge and any other interface.
set -euo pipefail
cd "$(dirname "$0")"
. ./node.env
bin=$PWD/bin
pki=$KWOK_WORKDIR/clusters/$CLUSTER_NAME/pki
kubeconfig=$KWOK_WORKDIR/kubeconfig
work=$NODE_WORK
mkdir -p "$work" "$NODE_ROOT" "$NODE_RUN" "$NODE_ROOT/cni/net.d"

for tool in containerd containerd-shim-runc-v2 runc ctr iptables ip6tables conntrack ip openssl; do
  command -v "$tool" >/dev/null || { echo "node-up: $tool is not installed (see .ci/run)" >&2; exit 1; }
done
[ -x "$CNI_BIN/bridge" ] && [ -x "$CNI_BIN/host-local" ] \
  || { echo "node-up: the CNI plugins are not in $CNI_BIN (containernetworking-plugins)" >&2; exit 1; }

# start NAME CMD...: runs CMD in the background, logging to NAME.log, its
# pid in NAME.pid for node-down.sh.
start() {
  local name=$1
  shift
  "$@" >"$work/$name.log" 2>&1 &
  echo $! >"$work/$name.pid"
}

# wait_for WHAT SECONDS TEST...: retries TEST until it passes; on timeout
# prints the last lines of WHAT's log and fails.
wait_for() {
  local what=$1 secs=$2
  shift 2
  for _ in $(seq $((secs * 5))); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "node-up: $what did not come up in ${secs}s; the end of $work/$what.log:" >&2
  tail -20 "$work/$what.log" >&2 || true
  exit 1
}

# Credentials signed by the cluster's CA: the kubelet as system:node:<name>
# (the Node authorizer's user), kube-proxy as system:kube-proxy (bound to
# system:node-proxier by the API server's default RBAC).
credentials() {
  local who=$1 cn=$2 org=$3
  openssl req -new -newkey rsa:2048 -nodes -subj "/O=$org/CN=$cn" \
    -keyout "$work/$who.key" -out "$work/$who.csr" 2>/dev/null
  openssl x509 -req -in "$work/$who.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
    -CAcreateserial -days 2 -out "$work/$who.crt" 2>/dev/null
  local server
  server=$(sed -n 's/^ *server: //p' "$kubeconfig" | head -1)
  cat >"$work/$who.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: {server: "$server", certificate-authority: "$pki/ca.crt"}
users:
- name: $who
  user: {client-certificate: "$work/$who.crt", client-key: "$work/$who.key"}
contexts:
- name: $who
  context: {cluster: test, user: $who}
current-context: $who
EOF
}
credentials kubelet "system:node:$NODE_NAME" system:nodes
credentials kube-proxy system:kube-proxy system:node-proxier

# The pod network: a bridge with the gateway address, a route for the
# Service range through it (so that the host reaches ClusterIPs from the
# bridge address, never by its default route), and the rule that keeps
# forwarded traffic between the bridge and itself. Pods have no default
# route: only the Service range, through the bridge address.
if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
  ip link add "$BRIDGE" type bridge
fi
ip addr replace "$BRIDGE_IP/${POD_CIDR#*/}" dev "$BRIDGE"
ip link set "$BRIDGE" up
ip route replace "$SERVICE_CIDR" dev "$BRIDGE" src "$BRIDGE_IP"
for ipt in iptables ip6tables; do
  $ipt -t mangle -N "$FENCE_CHAIN" 2>/dev/null || $ipt -t mangle -F "$FENCE_CHAIN"
  $ipt -t mangle -A "$FENCE_CHAIN" -i "$BRIDGE" ! -o "$BRIDGE" -j DROP
  $ipt -t mangle -A "$FENCE_CHAIN" ! -i "$BRIDGE" -o "$BRIDGE" -j DROP
  $ipt -t mangle -C FORWARD -j "$FENCE_CHAIN" 2>/dev/null || $ipt -t mangle -I FORWARD 1 -j "$FENCE_CHAIN"
done
cat >"$NODE_ROOT/cni/net.d/10-runner-node.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "runner-node",
  "plugins": [{
    "type": "bridge",
    "bridge": "$BRIDGE",
    "isGateway": true,
    "ipMasq": false,
    "hairpinMode": true,
    "ipam": {
      "type": "host-local",
      "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$BRIDGE_IP"}]],
      "routes": [{"dst": "$SERVICE_CIDR"}],
      "dataDir": "$NODE_ROOT/cni/ipam"
    }
  }]
}
EOF

# The runtime. restrict_oom_score_adj: runc cannot raise a container's
# OOM score adjustment without CAP_SYS_RESOURCE, which a VM's root may
# lack ("can't get final child's PID from pipe").
cat >"$work/containerd.toml" <<EOF
version = 2
root = "$NODE_ROOT/containerd"
state = "$NODE_RUN/containerd"
[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$NODE_ROOT/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN"
    conf_dir = "$NODE_ROOT/cni/net.d"
EOF
start containerd containerd --config "$work/containerd.toml"
wait_for containerd 30 ctr --address "$CONTAINERD_SOCK" version
# The images the node runs without a registry: the sandbox, and the
# runner's own (make image) under the name the runner asks for by default.
"$bin/nodeimage" -binary "$bin/pause" -name "$PAUSE_IMAGE" -out "$work/pause.tar"
ctr --address "$CONTAINERD_SOCK" -n k8s.io images import "$work/pause.tar" >/dev/null
# make image's archive, named in full as the runner asks for it (nodeimage
# says why), keeping the index digest make image printed.
if [ -n "${RUNNER_IMAGE_ARCHIVE:-}" ]; then
  "$bin/nodeimage" -archive "$RUNNER_IMAGE_ARCHIVE" -name "$RUNNER_IMAGE" -out "$work/runner.tar"
  ctr --address "$CONTAINERD_SOCK" -n k8s.io images import --platform "linux/$(go env GOARCH)" "$work/runner.tar" >/dev/null
  rm -f "$work/runner.tar"
  # Named by digest too, as a pull from a registry leaves it: the CRI then
  # reports that digest as the pods' imageID.
  digest=$(ctr --address "$CONTAINERD_SOCK" -n k8s.io images ls "name==$RUNNER_IMAGE" | awk 'NR == 2 { print $3 }')
  ctr --address "$CONTAINERD_SOCK" -n k8s.io images tag "$RUNNER_IMAGE" "${RUNNER_IMAGE%:*}@$digest" >/dev/null
fi
# Knative's images built here (make knative-images), each named by digest
# too, so that a Knative pod's imageID names its image's digest.
if [ -n "${KNATIVE_IMAGES:-}" ]; then
  for archive in "$KNATIVE_IMAGES"/*.tar; do
    imported=$(ctr --address "$CONTAINERD_SOCK" -n k8s.io images import "$archive" | sed -n 's/^unpacking \(.*\) (sha256:.*/\1/p')
    for ref in $imported; do
      digest=$(ctr --address "$CONTAINERD_SOCK" -n k8s.io images ls "name==$ref" | awk 'NR == 2 { print $3 }')
      ctr --address "$CONTAINERD_SOCK" -n k8s.io images tag "$ref" "${ref%:*}@$digest" >/dev/null
    done
  done
  echo "loaded $(ls "$KNATIVE_IMAGES"/*.tar | wc -l) Knative images into the node"
fi

# The kubelet: cgroupfs (cgroup v1 here, still allowed with failCgroupV1
# false), serving on the bridge address to clients of the cluster's CA
# (the API server, with --kubelet-client-certificate), its pods' DNS
# CoreDNS on the bridge. Eviction thresholds are low so that a test
# machine with little free disk still runs pods.
echo "nameserver $BRIDGE_IP" >"$work/resolv.conf"
cat >"$work/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
failCgroupV1: false
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
address: $BRIDGE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$pki/ca.crt"}
authorization: {mode: Webhook}
clusterDNS: [$BRIDGE_IP]
clusterDomain: cluster.local
resolvConf: $work/resolv.conf
podLogsDir: $NODE_ROOT/pod-logs
failSwapOn: false
maxPods: 30
serializeImagePulls: false
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%}
imageGCHighThresholdPercent: 100
registerWithTaints: []
EOF
start kubelet "$bin/kubelet" --config "$work/kubelet.yaml" --kubeconfig "$work/kubelet.kubeconfig" \
  --root-dir "$NODE_ROOT/kubelet" --cert-dir "$NODE_ROOT/kubelet/pki" \
  --hostname-override "$NODE_NAME" --node-ip "$BRIDGE_IP" \
  --node-labels "$NODE_LABEL=true" --v 1
wait_for kubelet 60 curl -sf "http://127.0.0.1:$KUBELET_HEALTHZ_PORT/healthz"

# kube-proxy: Services in iptables; conntrack sysctls left as they are
# (maxPerCore and the timeouts 0), NodePorts only on the bridge address.
cat >"$work/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: "$work/kube-proxy.kubeconfig"}
hostnameOverride: $NODE_NAME
mode: iptables
clusterCIDR: $POD_CIDR
detectLocalMode: ClusterCIDR
nodePortAddresses: ["$BRIDGE_IP/32"]
iptables: {masqueradeAll: false, localhostNodePorts: false}
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
healthzBindAddress: 127.0.0.1:$PROXY_HEALTHZ_PORT
metricsBindAddress: 127.0.0.1:$PROXY_METRICS_PORT
EOF
start kube-proxy "$bin/kube-proxy" --config "$work/kube-proxy.yaml" --v 1
wait_for kube-proxy 60 curl -sf "http://127.0.0.1:$PROXY_HEALTHZ_PORT/healthz"

# CoreDNS answers cluster names only: a pod that asks for anything else
# is told it does not exist rather than forwarded off this machine.
cat >"$work/Corefile" <<EOF
.:53 {
  bind $BRIDGE_IP
  errors
  health 127.0.0.1:$DNS_HEALTH_PORT
  ready 127.0.0.1:$DNS_READY_PORT
  cache 5
  kubernetes cluster.local in-addr.arpa ip6.arpa {
    kubeconfig $kubeconfig
    pods insecure
  }
}
EOF
start coredns "$bin/coredns" -conf "$work/Corefile"
wait_for coredns 60 curl -sf "http://127.0.0.1:$DNS_READY_PORT/ready"

# The node is up when it reports Ready.
ready() {
  curl -sf --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" \
    "$(sed -n 's/^ *server: //p' "$kubeconfig" | head -1)/api/v1/nodes/$NODE_NAME" \
    | tr -d ' \n' | grep -q '"type":"Ready","status":"True"'
}
wait_for kubelet 90 ready
echo "real node $NODE_NAME is Ready (pods on $POD_CIDR, Services on $SERVICE_CIDR, DNS at $BRIDGE_IP)"
