package kube

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	coordv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A running run holds a Lease, renewed every leaseRenew, that says it is
// alive: another run finding its objects can tell a run that is going on
// from one that was killed (whose Lease is not renewed past leaseDuration).
const (
	leaseDuration = 15 * time.Second
	leaseRenew    = 5 * time.Second
)

func leaseName(runID string) string { return "runner-" + strings.ToLower(runID) }

// Heartbeat creates the run's Lease in the run's namespace (created if
// missing; both carry the run label, so teardown's sweep removes them) and
// renews it until stop is called.
func (t *Target) Heartbeat(ctx context.Context) (stop func(), err error) {
	ns := t.cluster.Namespace
	if err := t.ensureNamespace(ctx, ns); err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	holder := fmt.Sprintf("%s pid %d", host, os.Getpid())
	secs := int32(leaseDuration / time.Second)
	now := metav1.NewMicroTime(time.Now())
	lease := &coordv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: leaseName(t.runID), Namespace: ns, Labels: map[string]string{RunLabel: t.runID}},
		Spec:       coordv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs, AcquireTime: &now, RenewTime: &now},
	}
	leases := t.cluster.Client.CoordinationV1().Leases(ns)
	if _, err := leases.Create(ctx, lease, metav1.CreateOptions{FieldManager: FieldManager}); err != nil {
		return nil, fmt.Errorf("create the run's lease in %s: %w", ns, err)
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(leaseRenew)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			rctx, cancel := context.WithTimeout(context.Background(), leaseRenew)
			l, err := leases.Get(rctx, lease.Name, metav1.GetOptions{})
			if err == nil {
				now := metav1.NewMicroTime(time.Now())
				l.Spec.RenewTime = &now
				_, err = leases.Update(rctx, l, metav1.UpdateOptions{FieldManager: FieldManager})
			}
			cancel()
			if err != nil {
				t.log.Warn("renew the run's lease", "err", err)
			}
		}
	}()
	return func() { close(done); <-stopped }, nil
}

// LiveRun is another run whose Lease is current.
type LiveRun struct {
	RunID  string
	Holder string
	Age    time.Duration // since it was last renewed
}

func (l LiveRun) String() string {
	return fmt.Sprintf("%s=%s (%s, renewed %s ago)", RunLabel, l.RunID, l.Holder, l.Age.Round(time.Second))
}

// Live returns the runs among objects whose Lease is current.
func (t *Target) Live(ctx context.Context, objects []Labelled) ([]LiveRun, error) {
	seen := map[string]bool{}
	var live []LiveRun
	for _, o := range objects {
		if o.Resource.Group != "coordination.k8s.io" || o.Resource.Resource != "leases" || o.Name != leaseName(o.RunID) || seen[o.RunID] {
			continue
		}
		seen[o.RunID] = true
		l, err := t.cluster.Client.CoordinationV1().Leases(o.Namespace).Get(ctx, o.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("lease of run %s: %w", o.RunID, err)
		}
		if l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
			continue
		}
		age := time.Since(l.Spec.RenewTime.Time)
		if age < time.Duration(*l.Spec.LeaseDurationSeconds)*time.Second {
			holder := ""
			if l.Spec.HolderIdentity != nil {
				holder = *l.Spec.HolderIdentity
			}
			live = append(live, LiveRun{RunID: o.RunID, Holder: holder, Age: max(age, 0)})
		}
	}
	sort.Slice(live, func(i, j int) bool { return live[i].RunID < live[j].RunID })
	return live, nil
}
