//go:build integration

package kube

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	coordv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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
	// Two simulated nodes, and the real one unless make was told
	// REAL_NODE=0.
	want := 2
	if os.Getenv("RUNNER_TEST_REAL_NODE") != "0" {
		want = 3
	}
	if err != nil || len(nodes.Items) != want {
		t.Errorf("nodes: %v, %v; want %d", len(nodes.Items), err, want)
	}
}

// A Lock's Lease: refused while held, taken over once expired, lost when
// another takes it (and then not deleted by the loser's unlock).
func TestLockLease(t *testing.T) {
	path := os.Getenv("RUNNER_TEST_KUBECONFIG")
	ctx := context.Background()
	cl, err := Connect(ctx, Access{Kubeconfig: path}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	leases := cl.Client.CoordinationV1().Leases(LockNamespace)

	unlockA, err := Lock(ctx, cl, "test-lock", "a", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Lock(ctx, cl, "test-lock", "b", nil); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "a, renewed") {
		t.Errorf("second holder: %v", err)
	}
	unlockA()
	if _, err := leases.Get(ctx, "test-lock", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("unlock left the lease: %v", err)
	}

	// A holder that died a minute ago.
	holder, secs := "dead", int32(15)
	old := metav1.NewMicroTime(time.Now().Add(-time.Minute))
	if _, err := leases.Create(ctx, &coordv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "test-lock"}, Spec: coordv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs, RenewTime: &old}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	lostC := make(chan error, 1)
	unlockC, err := Lock(ctx, cl, "test-lock", "c", func(err error) { lostC <- err })
	if err != nil {
		t.Fatalf("an expired lease was not taken over: %v", err)
	}
	// Another takes it: c learns within a renewal, and leaves it be.
	l, err := leases.Get(ctx, "test-lock", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	thief := "thief"
	l.Spec.HolderIdentity = &thief
	if _, err := leases.Update(ctx, l, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-lostC:
		if !strings.Contains(err.Error(), "taken over by thief") {
			t.Errorf("lost: %v", err)
		}
	case <-time.After(3 * leaseRenew):
		t.Error("the loss went unnoticed")
	}
	unlockC()
	l, err = leases.Get(ctx, "test-lock", metav1.GetOptions{})
	if err != nil || holderOf(l) != "thief" {
		t.Errorf("the loser's unlock touched the thief's lease: %v %v", err, l)
	}
	_ = leases.Delete(ctx, "test-lock", metav1.DeleteOptions{})
}
