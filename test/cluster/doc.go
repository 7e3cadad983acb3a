// Module cluster builds a real Kubernetes control plane for the runner's
// integration tests, with no cluster and no container runtime:
// kube-apiserver, kube-controller-manager and kube-scheduler from
// k8s.io/kubernetes, etcd from go.etcd.io/etcd (the API server's watches
// need a newer etcd than Debian ships), run as local processes by kwokctl
// with nodes simulated by kwok. It is a module of its own so that the
// runner's module does not depend on Kubernetes' internals. See make
// cluster-up and make cluster-down.
package cluster
