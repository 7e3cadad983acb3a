package kube

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	coordv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordclient "k8s.io/client-go/kubernetes/typed/coordination/v1"
)

// A running run holds a Lease, renewed every leaseRenew, that says it is
// alive: another run finding its objects can tell a run that is going on
// from one that was killed (whose Lease is not renewed past leaseDuration).
const (
	leaseDuration = 15 * time.Second
	leaseRenew    = 5 * time.Second
)

func leaseName(runID string) string { return "runner-" + strings.ToLower(runID) }

// Hold creates the run's Lease in the run's namespace (created if
// missing; both carry the run label, so teardown's sweep removes them) and
// renews it until release is called. A Lease that disappears (its namespace
// swept by --clean-stale, say) is made again at the next renewal.
func (t *Target) Hold(ctx context.Context) (release func(), err error) {
	if err := t.renewLease(ctx); err != nil {
		return nil, err
	}
	failing := time.Time{}
	return every(leaseRenew, func() bool {
		rctx, cancel := context.WithTimeout(context.Background(), leaseRenew)
		err := t.renewLease(rctx)
		cancel()
		switch {
		case err == nil:
			failing = time.Time{}
		case failing.IsZero():
			failing = time.Now()
			t.log.Warn("renew the run's lease", "err", err)
		case time.Since(failing) > leaseDuration:
			t.log.Error("the run's lease has lapsed: other runs may take this one for a killed run", "err", err)
		}
		return false
	}), nil
}

// every calls f every period, on a goroutine of its own, until f returns
// true or stop is called; stop returns once the goroutine has ended.
func every(period time.Duration, f func() (done bool)) (stop func()) {
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			if f() {
				return
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		<-stopped
	}
}

// renewLease renews the run's Lease, or makes it (and its namespace).
func (t *Target) renewLease(ctx context.Context) error {
	ns := t.cluster.Namespace
	leases := t.cluster.Client.CoordinationV1().Leases(ns)
	l, err := leases.Get(ctx, leaseName(t.runID), metav1.GetOptions{})
	if err == nil {
		return renew(ctx, leases, l)
	}
	if !apierrors.IsNotFound(err) {
		return err
	}
	if err := t.ensureNamespace(ctx, ns); err != nil {
		return err
	}
	host, _ := os.Hostname()
	lease := &coordv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: leaseName(t.runID), Namespace: ns, Labels: map[string]string{RunLabel: t.runID}},
		Spec:       leaseSpec(fmt.Sprintf("%s pid %d", host, os.Getpid())),
	}
	if _, err := leases.Create(ctx, lease, metav1.CreateOptions{FieldManager: FieldManager}); err != nil {
		return fmt.Errorf("create the run's lease in %s: %w", ns, err)
	}
	return nil
}

// leaseSpec is a Lease for holder, acquired and renewed now.
func leaseSpec(holder string) coordv1.LeaseSpec {
	secs := int32(leaseDuration / time.Second)
	now := metav1.NewMicroTime(time.Now())
	return coordv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs, AcquireTime: &now, RenewTime: &now}
}

// renew sets l's renewal time to now.
func renew(ctx context.Context, leases coordclient.LeaseInterface, l *coordv1.Lease) error {
	now := metav1.NewMicroTime(time.Now())
	l.Spec.RenewTime = &now
	_, err := leases.Update(ctx, l, metav1.UpdateOptions{FieldManager: FieldManager})
	return err
}

// RenewLease renews the run's Lease now, making it again if it is gone.
func (t *Target) RenewLease(ctx context.Context) error { return t.renewLease(ctx) }

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
		if current(l) {
			live = append(live, LiveRun{RunID: o.RunID, Holder: holderOf(l), Age: max(time.Since(l.Spec.RenewTime.Time), 0)})
		}
	}
	sort.Slice(live, func(i, j int) bool { return live[i].RunID < live[j].RunID })
	return live, nil
}

// ErrLocked is returned by Lock while another holder's Lease is current.
var ErrLocked = errors.New("held by another")

// LockNamespace holds the Leases of Lock: a namespace every cluster has, so
// that a lock covers the whole cluster whatever namespace a run uses.
const LockNamespace = "default"

// Lock takes the Lease name in LockNamespace for holder and renews it until
// unlock is called, which deletes it if it is still holder's. A Lease
// another holder let expire (a killed process) is taken over. If the Lease
// is lost (renewals failed for longer than it lasts, and another took it),
// lost is called once.
func Lock(ctx context.Context, cl *Connection, name, holder string, lost func(error)) (unlock func(), err error) {
	leases := cl.Client.CoordinationV1().Leases(LockNamespace)
	spec := leaseSpec(holder)
	held, err := leases.Create(ctx, &coordv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: LockNamespace}, Spec: spec}, metav1.CreateOptions{FieldManager: FieldManager})
	if apierrors.IsAlreadyExists(err) {
		old, gerr := leases.Get(ctx, name, metav1.GetOptions{})
		if gerr != nil {
			return nil, fmt.Errorf("lease %s/%s: %w", LockNamespace, name, gerr)
		}
		if current(old) {
			return nil, fmt.Errorf("lease %s/%s is %w: %s, renewed %s ago", LockNamespace, name, ErrLocked, holderOf(old), time.Since(old.Spec.RenewTime.Time).Round(time.Second))
		}
		old.Spec = spec
		held, err = leases.Update(ctx, old, metav1.UpdateOptions{FieldManager: FieldManager})
		if apierrors.IsConflict(err) {
			return nil, fmt.Errorf("lease %s/%s is %w: taken over by another at the same moment", LockNamespace, name, ErrLocked)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("lease %s/%s: %w", LockNamespace, name, err)
	}
	uid := held.UID
	stop := every(leaseRenew, func() bool {
		rctx, cancel := context.WithTimeout(context.Background(), leaseRenew)
		defer cancel()
		l, err := leases.Get(rctx, name, metav1.GetOptions{})
		if err == nil && (l.UID != uid || holderOf(l) != holder) {
			err = fmt.Errorf("lease %s/%s was taken over by %s", LockNamespace, name, holderOf(l))
			if lost != nil {
				lost(err)
			}
			return true
		}
		if err == nil {
			err = renew(rctx, leases, l)
		}
		if apierrors.IsNotFound(err) {
			if lost != nil {
				lost(fmt.Errorf("lease %s/%s was deleted", LockNamespace, name))
			}
			return true
		}
		return false
	})
	return func() {
		stop()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		l, err := leases.Get(ctx, name, metav1.GetOptions{})
		if err != nil || l.UID != uid || holderOf(l) != holder {
			return // not ours any more
		}
		rv := l.ResourceVersion
		_ = leases.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv}})
	}, nil
}

// current reports whether a Lease was renewed within its duration.
func current(l *coordv1.Lease) bool {
	return l.Spec.RenewTime != nil && l.Spec.LeaseDurationSeconds != nil &&
		time.Since(l.Spec.RenewTime.Time) < time.Duration(*l.Spec.LeaseDurationSeconds)*time.Second
}

func holderOf(l *coordv1.Lease) string {
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}
