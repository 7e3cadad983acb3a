//go:build integration

package kube

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Against the test cluster (make cluster-up): RUNNER_TEST_KUBECONFIG names
// its kubeconfig.
func TestConnectToTestCluster(t *testing.T) {
	path := os.Getenv("RUNNER_TEST_KUBECONFIG")
	if path == "" {
		t.Fatal("RUNNER_TEST_KUBECONFIG is not set: run make cluster-up first")
	}
	cl, err := Connect(context.Background(), Access{Kubeconfig: path}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(cl.Version, "v1.37") || cl.Namespace != "default" {
		t.Errorf("%s", cl)
	}
	nodes, err := cl.Client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	if err != nil || len(nodes.Items) != 2 {
		t.Errorf("nodes: %v, %v", len(nodes.Items), err)
	}
}
