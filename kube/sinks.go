package kube

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/perfrunner/runner/internal/helm"
	"github.com/perfrunner/runner/target"
)

// claimSinks names, as the sinks they say they are, the objects of a
// release that a wait has just seen ready: each one's sink is its
// status.address.url, the address inside the cluster that Knative gives a
// channel or a broker.
func (t *Target) claimSinks(ctx context.Context, rel *helm.Release, objs []object) error {
	if t.host == nil {
		return nil
	}
	for _, o := range objs {
		if o.sink == "" {
			continue
		}
		if _, err := target.ParseSink(o.sink); err != nil {
			return fmt.Errorf("release %s: %s: annotation %s: %w", rel.Name, o, target.SinkAnnotation, err)
		}
		u, err := t.dyn.Resource(o.gvr).Namespace(o.namespace).Get(ctx, o.name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("sink %s: %s: %w", o.sink, o, err)
		}
		url, _, _ := unstructured.NestedString(u.Object, "status", "address", "url")
		if url == "" {
			return fmt.Errorf("sink %s: %s is ready but has no status.address.url", o.sink, o)
		}
		if have, err := t.host.Sink(o.sink); err == nil && have == url {
			continue // a second wait for the same object
		}
		if err := t.host.ClaimSink(o.sink, url); err != nil {
			return err
		}
		key := rel.Namespace + "/" + rel.Name
		t.mu.Lock()
		t.sinks[key] = append(t.sinks[key], o.sink, url)
		t.mu.Unlock()
		t.log.Info("sink", "name", o.sink, "url", url, "object", o.String())
	}
	return nil
}

// releaseSinks forgets the sinks a release's objects were.
func (t *Target) releaseSinks(release, namespace string) {
	key := namespace + "/" + release
	t.mu.Lock()
	claimed := t.sinks[key]
	delete(t.sinks, key)
	t.mu.Unlock()
	for i := 0; i+1 < len(claimed); i += 2 {
		t.host.ReleaseSink(claimed[i], claimed[i+1])
	}
}
