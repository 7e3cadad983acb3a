// Package fake is a target that records what steps ask of it and answers
// as it is told to, for unit tests of steps without the engine, twins or a
// cluster. It implements target.Target and target.Cluster.
package fake

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/perfrunner/runner/internal/helm"
	"github.com/perfrunner/runner/target"
)

// Call is one method call the fake received.
type Call struct {
	Method    string         // "Install", "Uninstall", "Wait", "Apply", …
	Release   string         // Install, Upgrade, Uninstall, Wait
	Namespace string         // the namespace the call named
	Chart     string         // Install, Upgrade: the chart's name
	Values    map[string]any // Install, Upgrade
	Objects   []string       // Wait: kind/name; Apply: kind/name of each object
	Ref       target.ObjectRef
	Wait      target.WaitSpec
}

// Target is a recording target. Set its fields before use; it is safe for
// concurrent use.
type Target struct {
	// Errors makes the method of that name fail with the error.
	Errors map[string]error
	// Sinks answers Sink by sink name; a missing one is an error.
	Sinks map[string]string
	// Brokers answers Bootstrap; nil is target.ErrNoKafka.
	Brokers []string
	// RunNamespace is Namespace's answer ("default" when empty).
	RunNamespace string

	mu       sync.Mutex
	calls    []Call
	releases map[string]bool // namespace/release of what is installed
	objects  map[string]bool // ObjectRef.String() of what is applied
}

var (
	_ target.Target  = (*Target)(nil)
	_ target.Cluster = (*Target)(nil)
)

func (f *Target) record(c Call) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
	if f.releases == nil {
		f.releases, f.objects = map[string]bool{}, map[string]bool{}
	}
	return f.Errors[c.Method]
}

// Calls returns the calls received so far, in order.
func (f *Target) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Call(nil), f.calls...)
}

// Installed returns namespace/release of every release installed and not
// uninstalled, sorted.
func (f *Target) Installed() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return sortedKeys(f.releases)
}

// Applied returns every object applied and not deleted, sorted.
func (f *Target) Applied() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return sortedKeys(f.objects)
}

func sortedKeys(set map[string]bool) []string {
	list := make([]string, 0, len(set))
	for k := range set {
		list = append(list, k)
	}
	sort.Strings(list)
	return list
}

// Install records the release as installed unless Errors["Install"] is set.
func (f *Target) Install(_ context.Context, c *helm.Chart, release, namespace string, values map[string]any) error {
	if err := f.record(Call{Method: "Install", Release: release, Namespace: namespace, Chart: c.Name, Values: values}); err != nil {
		return err
	}
	f.mu.Lock()
	f.releases[namespace+"/"+release] = true
	f.mu.Unlock()
	return nil
}

// Upgrade records the call; the release must be installed.
func (f *Target) Upgrade(_ context.Context, c *helm.Chart, release, namespace string, values map[string]any) error {
	if err := f.record(Call{Method: "Upgrade", Release: release, Namespace: namespace, Chart: c.Name, Values: values}); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.releases[namespace+"/"+release] {
		return fmt.Errorf("release %s/%s is not installed", namespace, release)
	}
	return nil
}

// Uninstall forgets the release.
func (f *Target) Uninstall(_ context.Context, release, namespace string) error {
	if err := f.record(Call{Method: "Uninstall", Release: release, Namespace: namespace}); err != nil {
		return err
	}
	f.mu.Lock()
	delete(f.releases, namespace+"/"+release)
	f.mu.Unlock()
	return nil
}

// Wait records the call.
func (f *Target) Wait(_ context.Context, release, namespace string, objects []string) error {
	return f.record(Call{Method: "Wait", Release: release, Namespace: namespace, Objects: objects})
}

// Sink answers from Sinks.
func (f *Target) Sink(s target.Sink) (string, error) {
	if err := f.record(Call{Method: "Sink", Objects: []string{s.String()}}); err != nil {
		return "", err
	}
	if url, ok := f.Sinks[s.String()]; ok {
		return url, nil
	}
	return "", fmt.Errorf("no sink %s", s)
}

// Bootstrap answers Brokers.
func (f *Target) Bootstrap(servers string) ([]string, error) {
	if err := f.record(Call{Method: "Bootstrap", Objects: []string{servers}}); err != nil {
		return nil, err
	}
	if f.Brokers == nil {
		return nil, fmt.Errorf("bootstrap %s: %w", servers, target.ErrNoKafka)
	}
	return f.Brokers, nil
}

// Close records the call.
func (f *Target) Close(context.Context) error { return f.record(Call{Method: "Close"}) }

// Namespace returns RunNamespace, or "default".
func (f *Target) Namespace() string {
	if f.RunNamespace == "" {
		return "default"
	}
	return f.RunNamespace
}

// Apply records the objects as applied.
func (f *Target) Apply(_ context.Context, namespace string, objects []target.Object) error {
	refs := make([]string, len(objects))
	for i, o := range objects {
		refs[i] = refOf(o, namespace).String()
	}
	if err := f.record(Call{Method: "Apply", Namespace: namespace, Objects: refs}); err != nil {
		return err
	}
	f.mu.Lock()
	for _, r := range refs {
		f.objects[r] = true
	}
	f.mu.Unlock()
	return nil
}

// refOf names an object of a manifest.
func refOf(o target.Object, namespace string) target.ObjectRef {
	meta, _ := o["metadata"].(map[string]any)
	ref := target.ObjectRef{Namespace: namespace}
	ref.APIVersion, _ = o["apiVersion"].(string)
	ref.Kind, _ = o["kind"].(string)
	if meta != nil {
		ref.Name, _ = meta["name"].(string)
		if ns, _ := meta["namespace"].(string); ns != "" {
			ref.Namespace = ns
		}
	}
	return ref
}

// Delete forgets an applied object.
func (f *Target) Delete(_ context.Context, o target.ObjectRef) error {
	if err := f.record(Call{Method: "Delete", Ref: o, Namespace: o.Namespace}); err != nil {
		return err
	}
	f.mu.Lock()
	delete(f.objects, o.String())
	f.mu.Unlock()
	return nil
}

// WaitFor records the call.
func (f *Target) WaitFor(_ context.Context, w target.WaitSpec) error {
	return f.record(Call{Method: "WaitFor", Wait: w, Namespace: w.Namespace, Release: w.Release, Objects: w.Objects})
}

// Namespaces returns the namespaces of the releases and objects present.
func (f *Target) Namespaces() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	seen := map[string]bool{}
	for k := range f.releases {
		ns, _, _ := strings.Cut(k, "/")
		seen[ns] = true
	}
	return sortedKeys(seen)
}

// Collect records the call.
func (f *Target) Collect(_ context.Context, dir string, namespaces []string) error {
	return f.record(Call{Method: "Collect", Objects: namespaces})
}
