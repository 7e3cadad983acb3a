// Command kube-proxy programs Services into the real node's iptables,
// built from k8s.io/kubernetes for the test cluster.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-proxy/app"
)

func main() { os.Exit(cli.Run(app.NewProxyCommand())) }
