// Command etcd is etcd's server, built for the test cluster (Debian's etcd
// is too old for the API server's watches).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
