// Command etcd is etcd's own entry point (etcdmain), built from the server module at the
// version Kubernetes itself pins, so the control plane runs the etcd it was tested with.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
