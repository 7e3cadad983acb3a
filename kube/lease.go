package kube

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	coordv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
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

// ErrLocked is returned by Lock while another holder's Lease is current.
var ErrLocked = errors.New("held by another")

// Lock takes the Lease name in the cluster's namespace for holder, and
// renews it until unlock is called, which deletes it. A Lease another
// holder let expire (a killed process) is taken over. The namespace is
// created if missing, and then deleted by unlock.
func Lock(ctx context.Context, cl *Cluster, name, holder string) (unlock func(), err error) {
	ns := cl.Namespace
	leases := cl.Client.CoordinationV1().Leases(ns)
	createdNS := false
	if _, err := cl.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		_, err := cl.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{FieldManager: FieldManager})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("create namespace %s for the lease %s: %w", ns, name, err)
		}
		createdNS = err == nil
	}
	secs := int32(leaseDuration / time.Second)
	now := metav1.NewMicroTime(time.Now())
	lease := &coordv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       coordv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs, AcquireTime: &now, RenewTime: &now},
	}
	_, err = leases.Create(ctx, lease, metav1.CreateOptions{FieldManager: FieldManager})
	if apierrors.IsAlreadyExists(err) {
		old, gerr := leases.Get(ctx, name, metav1.GetOptions{})
		if gerr != nil {
			return nil, fmt.Errorf("lease %s/%s: %w", ns, name, gerr)
		}
		if old.Spec.RenewTime != nil && old.Spec.LeaseDurationSeconds != nil &&
			time.Since(old.Spec.RenewTime.Time) < time.Duration(*old.Spec.LeaseDurationSeconds)*time.Second {
			who := ""
			if old.Spec.HolderIdentity != nil {
				who = *old.Spec.HolderIdentity
			}
			return nil, fmt.Errorf("lease %s/%s is %w: %s, renewed %s ago", ns, name, ErrLocked, who, time.Since(old.Spec.RenewTime.Time).Round(time.Second))
		}
		old.Spec = lease.Spec
		_, err = leases.Update(ctx, old, metav1.UpdateOptions{FieldManager: FieldManager}) // fails if another took it meanwhile
	}
	if err != nil {
		return nil, fmt.Errorf("lease %s/%s: %w", ns, name, err)
	}
	done, stopped := make(chan struct{}), make(chan struct{})
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
			if l, err := leases.Get(rctx, name, metav1.GetOptions{}); err == nil && l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity == holder {
				now := metav1.NewMicroTime(time.Now())
				l.Spec.RenewTime = &now
				_, _ = leases.Update(rctx, l, metav1.UpdateOptions{FieldManager: FieldManager})
			}
			cancel()
		}
	}()
	return func() {
		close(done)
		<-stopped
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = leases.Delete(ctx, name, metav1.DeleteOptions{})
		if !createdNS {
			return
		}
		// The namespace goes too, and is waited for: a run after this one
		// could not create anything in it while it terminates.
		namespaces := cl.Client.CoreV1().Namespaces()
		if err := namespaces.Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
			return
		}
		for ctx.Err() == nil {
			if _, err := namespaces.Get(ctx, ns, metav1.GetOptions{}); apierrors.IsNotFound(err) {
				return
			}
			time.Sleep(250 * time.Millisecond)
		}
	}, nil
}
