// Module cluster builds a real Kubernetes control plane for the runner's
// integration tests on one machine: kube-apiserver,
// kube-controller-manager and kube-scheduler from k8s.io/kubernetes, etcd
// from go.etcd.io/etcd (the API server's watches need a newer etcd than
// Debian ships), run as local processes by kwokctl; two nodes simulated by
// kwok; and one real node (node-up.sh) running real containers: Debian's
// containerd and runc, the kubelet, kube-proxy (iptables) and CoreDNS built
// here, the CNI bridge plugin on a bridge of its own, with cmd/pause and
// cmd/nodeimage making the sandbox image and loading the runner's.
// cmd/hoststate records the host before and puts it back after. It is a
// module of its own so that the runner's module does not depend on
// Kubernetes' internals. See make cluster-up and make cluster-down.
package cluster
