package steps

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/perfrunner/runner/internal/input"
	"github.com/perfrunner/runner/target"
	"k8s.io/apimachinery/pkg/labels"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/util/jsonpath"
)

func init() {
	Register(Kind{
		Name:      "kube.wait",
		Doc:       "Waits until a release, or objects, are ready: Deployments available, Pods ready, Jobs complete, anything else with a Ready condition, or a JSONPath condition; on local, the release's twin serves. The step's timeout bounds the wait; a timeout names each object not ready and its last conditions.",
		New:       func() Spec { return new(KubeWait) },
		Retryable: true,
	})
	Register(Kind{
		Name: "kube.apply",
		Doc:  "Creates or updates objects from manifests by server-side apply, labelled with the run (kubernetes only); teardown deletes them.",
		New:  func() Spec { return new(KubeApply) },
		Undo: undoObject,
	})
	Register(Kind{
		Name: "kube.delete",
		Doc:  "Deletes the objects of manifests and waits until they are gone (kubernetes only).",
		New:  func() Spec { return new(KubeDelete) },
	})
	Register(Kind{
		Name: "kube.prune",
		Doc:  "Deletes every object of some kinds that a label selector matches, and waits until they are gone (kubernetes only): in a run, only the run's own; in a platform's teardown, every match, as what the platform's operator made (CustomResourceDefinitions it never removes) is the platform's.",
		New:  func() Spec { return new(KubePrune) },
	})
	Register(Kind{
		Name:      "kube.restart",
		Doc:       "Restarts Deployments (a platform's data plane, as the 2019 report recreated the systems' pods between runs) as kubectl rollout restart does, and waits until their new pods are ready (kubernetes only).",
		New:       func() Spec { return new(KubeRestart) },
		Retryable: true,
	})
	Register(Kind{
		Name:      "kube.logs",
		Doc:       "Writes pod logs, pod states and events of namespaces into the step's directory (kubernetes only); the runner does so by itself when a step fails.",
		New:       func() Spec { return new(KubeLogs) },
		Retryable: true,
	})
}

// KubeWait waits for a release and, optionally, named objects of it.
type KubeWait struct {
	Release   string   `yaml:"release" doc:"the release to wait for (required on local)"`
	Namespace string   `yaml:"namespace" doc:"its namespace, and that of the objects (default: the run's)"`
	For       []string `yaml:"for" doc:"objects that must be ready, as kind/name (e.g. inmemorychannel/perf, deployment.apps/x); with a release, the release must render each"`
	JSONPath  string   `yaml:"jsonpath" doc:"instead of readiness, a JSONPath expression on each object (e.g. '{.status.phase}') that must print value"`
	Value     string   `yaml:"value" doc:"what jsonpath must print"`
}

// Validate checks the objects' form and the JSONPath expression.
func (k *KubeWait) Validate() []FieldError {
	var errs []FieldError
	if k.Namespace != "" && !validNamespace(k.Namespace) {
		errs = append(errs, FieldError{Field: "namespace", Message: namespaceRule})
	}
	if k.Release == "" && len(k.For) == 0 {
		errs = append(errs, FieldError{Field: "release", Message: "give a release, objects (for), or both"})
	}
	for _, o := range k.For {
		kind, name, ok := strings.Cut(o, "/")
		if !ok || kind == "" || name == "" || strings.Contains(name, "/") {
			errs = append(errs, FieldError{Field: "for", Message: fmt.Sprintf("%q is not kind/name", o)})
		}
	}
	if k.JSONPath != "" {
		if err := jsonpath.New("wait").Parse(k.JSONPath); err != nil {
			errs = append(errs, FieldError{Field: "jsonpath", Message: err.Error()})
		}
	}
	if (k.JSONPath == "") != (k.Value == "") {
		errs = append(errs, FieldError{Field: "jsonpath", Message: "jsonpath and value go together"})
	}
	return errs
}

// Run waits.
func (k *KubeWait) Run(ctx context.Context, env *Env) error {
	t, err := env.Shared.Target()
	if err != nil {
		return err
	}
	ns := env.Shared.Namespace(k.Namespace)
	what := k.Release
	if what == "" {
		what = strings.Join(k.For, ", ")
	}
	env.Status("waiting for " + what)
	if c, ok := t.(target.Cluster); ok {
		return c.WaitFor(ctx, target.WaitSpec{Release: k.Release, Namespace: ns, Objects: k.For, JSONPath: k.JSONPath, Value: k.Value})
	}
	if k.Release == "" || k.JSONPath != "" {
		return fmt.Errorf("on target %s kube.wait waits for a release's readiness only: objects without a release, and jsonpath, need a cluster", env.Target)
	}
	return t.Wait(ctx, k.Release, ns, k.For)
}

// cluster returns the run's cluster for a step of kind.
func (e *Env) cluster(kind string) (target.Cluster, error) { return e.Shared.Cluster(kind) }

// Manifests are objects from files and inline YAML.
type Manifests struct {
	Files     []string `yaml:"files" doc:"manifest files (YAML, any number of documents), relative to the scenario file"`
	Manifest  string   `yaml:"manifest" doc:"manifests written inline (YAML, documents separated by ---)"`
	Namespace string   `yaml:"namespace" doc:"where namespaced objects that name none go (default: the run's)"`
}

// Validate checks that there is something, and that inline manifests
// parse.
func (m *Manifests) Validate() []FieldError {
	var errs []FieldError
	if len(m.Files) == 0 && m.Manifest == "" {
		errs = append(errs, FieldError{Field: "files", Message: "give files, a manifest, or both"})
	}
	if m.Namespace != "" && !validNamespace(m.Namespace) {
		errs = append(errs, FieldError{Field: "namespace", Message: namespaceRule})
	}
	if m.Manifest != "" {
		if _, err := decodeObjects(strings.NewReader(m.Manifest), "manifest"); err != nil {
			errs = append(errs, FieldError{Field: "manifest", Message: err.Error()})
		}
	}
	return errs
}

// objects reads every object, files first.
func (m *Manifests) objects(env *Env) ([]target.Object, error) {
	var all []target.Object
	for _, f := range m.Files {
		path := resolvePath(f, env.Shared.Info.ScenarioDir)
		b, err := input.Read(path)
		if err != nil {
			return nil, fmt.Errorf("manifest: %w", err)
		}
		objs, err := decodeObjects(bytes.NewReader(b), path)
		if err != nil {
			return nil, err
		}
		all = append(all, objs...)
	}
	if m.Manifest != "" {
		objs, err := decodeObjects(strings.NewReader(m.Manifest), "manifest")
		if err != nil {
			return nil, err
		}
		all = append(all, objs...)
	}
	return all, nil
}

// refs names the objects, with the namespace they will have.
func (m *Manifests) refs(env *Env) ([]target.ObjectRef, []target.Object, error) {
	objs, err := m.objects(env)
	if err != nil {
		return nil, nil, err
	}
	ns := env.Shared.Namespace(m.Namespace)
	refs := make([]target.ObjectRef, len(objs))
	for i, o := range objs {
		refs[i] = refOf(o)
		if refs[i].Namespace == "" {
			refs[i].Namespace = ns
		}
	}
	return refs, objs, nil
}

func refOf(o target.Object) target.ObjectRef {
	meta, _ := o["metadata"].(map[string]any)
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }
	return target.ObjectRef{APIVersion: str(o, "apiVersion"), Kind: str(o, "kind"), Namespace: str(meta, "namespace"), Name: str(meta, "name")}
}

// decodeObjects reads YAML documents; each must name its apiVersion, kind
// and metadata.name.
func decodeObjects(r io.Reader, source string) ([]target.Object, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(r, 4096)
	var objs []target.Object
	for n := 1; ; n++ {
		var o target.Object
		err := dec.Decode(&o)
		if err == io.EOF {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", source, n, err)
		}
		if len(o) == 0 {
			continue
		}
		ref := refOf(o)
		if ref.APIVersion == "" || ref.Kind == "" || ref.Name == "" {
			return nil, fmt.Errorf("%s: document %d: an object needs apiVersion, kind and metadata.name", source, n)
		}
		objs = append(objs, o)
	}
}

// objectUndo is what a journaled object needs to be deleted.
type objectUndo struct {
	Object target.ObjectRef `json:"object"`
	Target target.Kind      `json:"target"`
}

func objectResource(ref target.ObjectRef, kind target.Kind) (Resource, error) {
	undo, err := json.Marshal(objectUndo{Object: ref, Target: kind})
	return Resource{Kind: "kube.apply", Name: ref.String(), Undo: undo}, err
}

// KubeApply applies manifests.
type KubeApply struct {
	Manifests `yaml:",inline"`
}

// Creates declares every object, so that teardown deletes it.
func (k *KubeApply) Creates(env *Env) ([]Resource, error) {
	refs, _, err := k.refs(env)
	if err != nil {
		return nil, err
	}
	res := make([]Resource, len(refs))
	for i, ref := range refs {
		if res[i], err = objectResource(ref, env.Target); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// Run applies the objects in order.
func (k *KubeApply) Run(ctx context.Context, env *Env) error {
	cluster, err := env.cluster("kube.apply")
	if err != nil {
		return err
	}
	_, objs, err := k.refs(env)
	if err != nil {
		return err
	}
	env.Status(fmt.Sprintf("applying %d objects", len(objs)))
	return cluster.Apply(ctx, env.Shared.Namespace(k.Namespace), objs)
}

// undoObject deletes a journaled object.
func undoObject(ctx context.Context, env *UndoEnv, r Resource) error {
	var u objectUndo
	if err := json.Unmarshal(r.Undo, &u); err != nil {
		return fmt.Errorf("journal entry %s: %w", r.ID(), err)
	}
	if u.Target != target.Kubernetes {
		return nil // kube.apply fails on other targets: nothing was made
	}
	cluster, ok := env.Target.(target.Cluster)
	if !ok {
		return fmt.Errorf("object %s on target %s: cleanup needs the cluster", r.Name, u.Target)
	}
	return cluster.Delete(ctx, u.Object)
}

// KubeDelete deletes the objects of manifests.
type KubeDelete struct {
	Manifests `yaml:",inline"`
}

// Deletes names the objects, so that teardown skips a step whose objects
// were never applied.
func (k *KubeDelete) Deletes(env *Env) ([]Resource, error) {
	refs, _, err := k.refs(env)
	if err != nil {
		return nil, err
	}
	res := make([]Resource, len(refs))
	for i, ref := range refs {
		res[i] = Resource{Kind: "kube.apply", Name: ref.String()}
	}
	return res, nil
}

// Run deletes the objects, last first.
func (k *KubeDelete) Run(ctx context.Context, env *Env) error {
	cluster, err := env.cluster("kube.delete")
	if err != nil {
		return err
	}
	refs, _, err := k.refs(env)
	if err != nil {
		return err
	}
	for i := len(refs) - 1; i >= 0; i-- {
		env.Status("deleting " + refs[i].String())
		if err := cluster.Delete(ctx, refs[i]); err != nil {
			return err
		}
	}
	return nil
}

// KubePrune deletes objects by a label selector.
type KubePrune struct {
	Kinds     []string `yaml:"kinds" runner:"required" doc:"the kinds to look in, as kube.wait names kinds (e.g. customresourcedefinition, configmap)"`
	Selector  string   `yaml:"selector" runner:"required" doc:"a label selector, e.g. app.kubernetes.io/name=knative-eventing"`
	Namespace string   `yaml:"namespace" doc:"for namespaced kinds, where (default: the run's)"`
}

// Validate checks the selector and the namespace.
func (k *KubePrune) Validate() []FieldError { return checkSelection(k.Namespace, k.Selector) }

// checkSelection checks a namespace and a label selector, either of which
// may be empty.
func checkSelection(namespace, selector string) []FieldError {
	var errs []FieldError
	if namespace != "" && !validNamespace(namespace) {
		errs = append(errs, FieldError{Field: "namespace", Message: namespaceRule})
	}
	if selector != "" {
		if _, err := labels.Parse(selector); err != nil {
			errs = append(errs, FieldError{Field: "selector", Message: err.Error()})
		}
	}
	return errs
}

// Run deletes what matches, kind by kind.
func (k *KubePrune) Run(ctx context.Context, env *Env) error {
	t, err := env.Shared.Target()
	if err != nil {
		return err
	}
	p, ok := t.(target.Pruner)
	if !ok {
		return fmt.Errorf("kube.prune needs a Kubernetes cluster (--target kubernetes); target %s has none", env.Target)
	}
	for _, kind := range k.Kinds {
		env.Status("deleting " + kind + " matching " + k.Selector)
		n, err := p.Prune(ctx, kind, env.Shared.Namespace(k.Namespace), k.Selector)
		if err != nil {
			return err
		}
		env.Log.Info("pruned", "kind", kind, "selector", k.Selector, "deleted", n)
	}
	return nil
}

// KubeRestart restarts Deployments.
type KubeRestart struct {
	Namespace   string   `yaml:"namespace" doc:"the Deployments' namespace (default: the run's), e.g. knative-eventing"`
	Deployments []string `yaml:"deployments" doc:"the Deployments' names, e.g. [imc-dispatcher]"`
	Selector    string   `yaml:"selector" doc:"instead of names, a label selector of the Deployments"`
}

// Validate checks that the Deployments are named one way.
func (k *KubeRestart) Validate() []FieldError {
	var errs []FieldError
	if (len(k.Deployments) == 0) == (k.Selector == "") {
		errs = append(errs, FieldError{Field: "deployments", Message: "give deployments or a selector"})
	}
	return append(errs, checkSelection(k.Namespace, k.Selector)...)
}

// Run restarts the Deployments and waits.
func (k *KubeRestart) Run(ctx context.Context, env *Env) error {
	t, err := env.Shared.Target()
	if err != nil {
		return err
	}
	r, ok := t.(target.Restarter)
	if !ok {
		return fmt.Errorf("kube.restart needs a Kubernetes cluster (--target kubernetes); target %s has none", env.Target)
	}
	env.Status("restarting " + strings.Join(k.Deployments, ", ") + k.Selector)
	names, err := r.Restart(ctx, env.Shared.Namespace(k.Namespace), k.Deployments, k.Selector)
	if err == nil {
		env.Log.Info("restarted", "deployments", names)
	}
	return err
}

// KubeLogs collects logs and events.
type KubeLogs struct {
	Namespaces []string `yaml:"namespaces" doc:"the namespaces (default: every namespace the run used)"`
}

// Validate checks the namespaces' names.
func (k *KubeLogs) Validate() []FieldError {
	for _, ns := range k.Namespaces {
		if !validNamespace(ns) {
			return []FieldError{{Field: "namespaces", Message: namespaceRule}}
		}
	}
	return nil
}

// Run writes the logs into the step's directory.
func (k *KubeLogs) Run(ctx context.Context, env *Env) error {
	cluster, err := env.cluster("kube.logs")
	if err != nil {
		return err
	}
	env.Status("collecting logs and events")
	return cluster.Collect(ctx, env.StepDir, k.Namespaces)
}
