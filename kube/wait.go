package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/util/jsonpath"

	"github.com/perfrunner/runner/internal/helm"
	"github.com/perfrunner/runner/target"
)

// Wait waits for a release, or objects of it.
func (t *Target) Wait(ctx context.Context, release, namespace string, objects []string) error {
	return t.WaitFor(ctx, target.WaitSpec{Release: release, Namespace: namespace, Objects: objects})
}

// WaitFor waits until what w names is ready.
func (t *Target) WaitFor(ctx context.Context, w target.WaitSpec) error {
	var path *jsonpath.JSONPath
	if w.JSONPath != "" {
		path = jsonpath.New("wait")
		if err := path.Parse(w.JSONPath); err != nil {
			return fmt.Errorf("jsonpath %q: %w", w.JSONPath, err)
		}
	}
	if w.Release != "" {
		rel, err := t.helm.Get(w.Release, w.Namespace)
		if err != nil {
			return err
		}
		objs, err := t.pick(rel, w.Objects)
		if err != nil {
			return err
		}
		if path != nil {
			return t.waitAll(ctx, objs, func(u *unstructured.Unstructured) (bool, string, error) { return matches(path, w.Value, u) })
		}
		if err := t.waitObjects(ctx, objs, len(w.Objects) > 0, false); err != nil {
			return err
		}
		return t.claimSinks(ctx, rel, objs)
	}
	var objs []object
	for _, o := range w.Objects {
		ob, err := t.named(o, w.Namespace)
		if err != nil {
			return err
		}
		objs = append(objs, ob)
	}
	return t.waitAll(ctx, objs, objectCheck(path, w.Value))
}

// named resolves an object named "kind/name" in namespace (for a
// namespaced kind).
func (t *Target) named(o, namespace string) (object, error) {
	kind, name, _ := strings.Cut(o, "/")
	gvr, namespaced, err := t.resourceFor(kind)
	if err != nil {
		return object{}, err
	}
	ob := object{gvr: gvr, name: name, label: o}
	if namespaced {
		ob.namespace = namespace
	}
	return ob, nil
}

// objectCheck is what an object named outside a release must satisfy: the
// JSONPath's value when there is one, else readiness (a custom resource
// must say Ready).
func objectCheck(path *jsonpath.JSONPath, value string) func(*unstructured.Unstructured) (bool, string, error) {
	if path != nil {
		return func(u *unstructured.Unstructured) (bool, string, error) { return matches(path, value, u) }
	}
	return func(u *unstructured.Unstructured) (bool, string, error) {
		return readiness(u, isCustom(u.GetAPIVersion()))
	}
}

// object is one object to wait for.
type object struct {
	gvr       schema.GroupVersionResource
	namespace string
	name      string
	kind      string
	label     string // how the user or the manifest names it
	sink      string // the sink it is, by its target.SinkAnnotation
}

func (o object) String() string {
	if o.namespace == "" {
		return o.label
	}
	return o.label + " in " + o.namespace
}

// manifestObjects decodes a release's manifest.
func (t *Target) manifestObjects(rel *helm.Release) ([]object, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(rel.Manifest), 4096)
	var objs []object
	for {
		var u unstructured.Unstructured
		err := dec.Decode(&u.Object)
		if err == io.EOF {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("release %s: manifest: %w", rel.Name, err)
		}
		if len(u.Object) == 0 {
			continue
		}
		m, ns, err := t.place(&u, rel.Namespace)
		if err != nil {
			return nil, err
		}
		objs = append(objs, object{gvr: m.Resource, namespace: ns, name: u.GetName(), kind: u.GetKind(), label: strings.ToLower(u.GetKind()) + "/" + u.GetName(),
			sink: u.GetAnnotations()[target.SinkAnnotation]})
	}
}

// pick returns the release's objects named by names ("kind/name"), or all
// of them when names is empty.
func (t *Target) pick(rel *helm.Release, names []string) ([]object, error) {
	all, err := t.manifestObjects(rel)
	if err != nil || len(names) == 0 {
		return all, err
	}
	var picked []object
	for _, n := range names {
		kind, name, _ := strings.Cut(n, "/")
		kind = strings.ToLower(kind)
		found := false
		for _, o := range all {
			k := strings.ToLower(o.kind)
			if o.name == name && (kind == k || kind == o.gvr.Resource || kind == o.gvr.Resource+"."+o.gvr.Group || kind == k+"."+o.gvr.Group) {
				picked = append(picked, o)
				found = true
				break
			}
		}
		if !found {
			have := make([]string, len(all))
			for i, o := range all {
				have[i] = o.label
			}
			return nil, fmt.Errorf("release %s renders no %s (it renders %s)", rel.Name, n, strings.Join(have, ", "))
		}
	}
	return picked, nil
}

// waitManifest waits for the release's objects: only workloads when
// workloadsOnly (as an install waits), else every object named, or every
// object of the release.
func (t *Target) waitManifest(ctx context.Context, rel *helm.Release, names []string, workloadsOnly bool) error {
	objs, err := t.pick(rel, names)
	if err != nil {
		return err
	}
	return t.waitObjects(ctx, objs, len(names) > 0, workloadsOnly)
}

// waitObjects waits until a release's objects are ready: only workloads
// when workloadsOnly; custom resources must say Ready when explicit (named
// in kube.wait).
func (t *Target) waitObjects(ctx context.Context, objs []object, explicit, workloadsOnly bool) error {
	return t.waitAll(ctx, objs, func(u *unstructured.Unstructured) (bool, string, error) {
		if workloadsOnly && !isWorkload(u.GetKind()) {
			return true, "", nil
		}
		return readiness(u, explicit && isCustom(u.GetAPIVersion()))
	})
}

// waitAll polls each object until check says it is ready, a permanent
// failure, or ctx ends; the error names every object not ready and what
// was last seen of it.
func (t *Target) waitAll(ctx context.Context, objs []object, check func(*unstructured.Unstructured) (bool, string, error)) error {
	last := map[int]string{}
	pending := make([]int, len(objs))
	for i := range objs {
		pending[i] = i
	}
	pods := t.newPodWatch()
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		var still []int
		for _, i := range pending {
			o := objs[i]
			u, err := t.dyn.Resource(o.gvr).Namespace(o.namespace).Get(ctx, o.name, metav1.GetOptions{})
			switch {
			case apierrors.IsNotFound(err):
				last[i] = "it does not exist"
				still = append(still, i)
				continue
			case err != nil:
				// A failed look (the time running out, a dropped
				// connection) says less than what was last seen.
				if last[i] == "" {
					last[i] = err.Error()
				}
				still = append(still, i)
				continue
			}
			ok, why, err := check(u)
			if err != nil {
				return fmt.Errorf("%s: %w", o, err)
			}
			if !ok {
				// A workload's pods may say what it waits for, or that
				// waiting cannot help.
				if isWorkload(u.GetKind()) {
					more, err := pods.trouble(ctx, u)
					if err != nil {
						return fmt.Errorf("%s: %w", o, err)
					}
					if more != "" {
						why = strings.TrimSuffix(why+"; "+more, "; ")
						why = strings.TrimPrefix(why, "; ")
					}
				}
				last[i] = why
				still = append(still, i)
			}
		}
		pending = still
		if len(pending) == 0 {
			return nil
		}
		target.Status(ctx, waitingFor(objs, pending, last))
		select {
		case <-tick.C:
		case <-ctx.Done():
			lines := make([]string, len(pending))
			for j, i := range pending {
				lines[j] = fmt.Sprintf("%s not ready: %s", objs[i], last[i])
			}
			return fmt.Errorf("%w: %s", context.Cause(ctx), strings.Join(lines, "; "))
		}
	}
}

// matches evaluates a JSONPath condition.
func matches(path *jsonpath.JSONPath, value string, u *unstructured.Unstructured) (bool, string, error) {
	var b strings.Builder
	if err := path.Execute(&b, u.Object); err != nil {
		return false, err.Error(), nil
	}
	if b.String() == value {
		return true, "", nil
	}
	return false, fmt.Sprintf("jsonpath printed %q, not %q", b.String(), value), nil
}

// waitingFor says what a wait is waiting for: the first object not ready
// and why, and how many more there are.
func waitingFor(objs []object, pending []int, last map[int]string) string {
	i := pending[0]
	s := fmt.Sprintf("waiting for %s: %s", objs[i], last[i])
	if n := len(pending) - 1; n > 0 {
		s += fmt.Sprintf(" (and %d more)", n)
	}
	return s
}

// Check looks once at the one object w names: nil when it exists and is
// ready (or w's JSONPath prints w's value), else an error that says what
// was found, wrapping target.ErrMissing when the object or its kind is not
// there.
func (t *Target) Check(ctx context.Context, w target.WaitSpec) error {
	if len(w.Objects) != 1 {
		return fmt.Errorf("check: one object, not %d", len(w.Objects))
	}
	ob, err := t.named(w.Objects[0], w.Namespace)
	if err != nil {
		kind, _, _ := strings.Cut(w.Objects[0], "/")
		return target.Missing("the cluster serves no kind %s", kind)
	}
	var path *jsonpath.JSONPath
	if w.JSONPath != "" {
		path = jsonpath.New("check")
		if err := path.Parse(w.JSONPath); err != nil {
			return fmt.Errorf("jsonpath %q: %w", w.JSONPath, err)
		}
	}
	u, err := t.dyn.Resource(ob.gvr).Namespace(ob.namespace).Get(ctx, ob.name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return target.Missing("not found")
	case err != nil:
		return err
	}
	ok, why, err := objectCheck(path, w.Value)(u)
	switch {
	case err != nil:
		return err
	case !ok && why == "":
		return errors.New("not ready")
	case !ok:
		return errors.New(why)
	}
	return nil
}
