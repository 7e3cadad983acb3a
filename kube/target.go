package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/util/jsonpath"
	"sigs.k8s.io/yaml"

	"github.com/perfrunner/runner/internal/helm"
	"github.com/perfrunner/runner/target"
)

// RunLabel is carried by every object a run creates; its value is the run's
// id (the run directory's name).
const RunLabel = "runner.perf/run-id"

// FieldManager is the runner's name in server-side apply.
const FieldManager = "runner"

// poll is how often a wait looks again.
const poll = 250 * time.Millisecond

// Target installs charts into a cluster and waits for them; it implements
// target.Target and target.Cluster. Everything it creates carries RunLabel.
type Target struct {
	cluster *Cluster
	runID   string
	log     *slog.Logger
	dyn     dynamic.Interface
	disc    discovery.CachedDiscoveryInterface
	mapper  meta.ResettableRESTMapper
	helm    *helm.Cluster

	mu         sync.Mutex
	namespaces map[string]bool // the namespaces the run used
	forwards   []chan struct{} // closing one stops a port-forward
}

var (
	_ target.Target  = (*Target)(nil)
	_ target.Cluster = (*Target)(nil)
)

// NewTarget returns the target of run runID on cl.
func NewTarget(cl *Cluster, runID string, log *slog.Logger) (*Target, error) {
	dyn, err := dynamic.NewForConfig(cl.Config)
	if err != nil {
		return nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cl.Config)
	if err != nil {
		return nil, err
	}
	disc := memory.NewMemCacheClient(dc)
	t := &Target{
		cluster:    cl,
		runID:      runID,
		log:        log,
		dyn:        dyn,
		disc:       disc,
		mapper:     restmapper.NewDeferredDiscoveryRESTMapper(disc),
		namespaces: map[string]bool{},
	}
	t.helm = &helm.Cluster{
		Kubeconfig: cl.Kubeconfig,
		Context:    cl.Context,
		Labels:     map[string]string{RunLabel: runID},
		Log:        func(format string, args ...any) { log.Debug(fmt.Sprintf(format, args...), "from", "helm") },
	}
	return t, nil
}

// RunID returns the id the target labels objects with.
func (t *Target) RunID() string { return t.runID }

// Namespace returns the run's namespace.
func (t *Target) Namespace() string { return t.cluster.Namespace }

// ensureNamespace creates ns, labelled with the run, unless it exists.
func (t *Target) ensureNamespace(ctx context.Context, ns string) error {
	t.mu.Lock()
	t.namespaces[ns] = true
	t.mu.Unlock()
	nsRes := schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	_, err := t.dyn.Resource(nsRes).Get(ctx, ns, metav1.GetOptions{})
	if err == nil {
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return fmt.Errorf("namespace %s: %w", ns, err)
	}
	obj := &unstructured.Unstructured{}
	obj.SetAPIVersion("v1")
	obj.SetKind("Namespace")
	obj.SetName(ns)
	obj.SetLabels(map[string]string{RunLabel: t.runID})
	_, err = t.dyn.Resource(nsRes).Create(ctx, obj, metav1.CreateOptions{FieldManager: FieldManager})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", ns, err)
	}
	t.log.Info("namespace created", "namespace", ns)
	return nil
}

// Install installs the chart and waits until its workloads are ready
// (Deployments, StatefulSets, DaemonSets, ReplicaSets, Pods, Jobs), as
// helm install --wait --wait-for-jobs does, within ctx. On failure the
// release is uninstalled at once (atomic): an install either succeeds
// ready or leaves nothing.
func (t *Target) Install(ctx context.Context, c *helm.Chart, release, namespace string, values map[string]any) error {
	if c.HasCRDs() {
		return fmt.Errorf("chart %s has CustomResourceDefinitions in crds/, which Helm installs unlabelled and never removes: apply them with kube.apply, which journals and removes them: %w", c.Source, target.ErrNotCreated)
	}
	if err := t.ensureNamespace(ctx, namespace); err != nil {
		return err
	}
	rel, err := t.helm.Install(ctx, c, release, namespace, values)
	if errors.Is(err, helm.ErrNameInUse) {
		// Not this run's: teardown must leave it alone.
		return fmt.Errorf("install %s: %w: %w", release, err, target.ErrNotCreated)
	}
	if err == nil {
		t.log.Info("release installed", "release", release, "namespace", namespace, "revision", rel.Revision)
		err = t.waitManifest(ctx, rel, nil, true)
	}
	if err != nil {
		t.log.Info("install failed: uninstalling", "release", release, "err", err)
		if uerr := t.Uninstall(context.WithoutCancel(ctx), release, namespace); uerr != nil {
			err = errors.Join(err, fmt.Errorf("and uninstalling it after: %w", uerr))
		}
		return fmt.Errorf("install %s in %s: %w", release, namespace, err)
	}
	return nil
}

// Upgrade upgrades the release and waits for its workloads; on failure it
// rolls back to the revision the release had.
func (t *Target) Upgrade(ctx context.Context, c *helm.Chart, release, namespace string, values map[string]any) error {
	before, err := t.helm.Get(release, namespace)
	if err != nil {
		return fmt.Errorf("upgrade %s in %s: %w", release, namespace, err)
	}
	if before.Labels[RunLabel] != t.runID {
		return fmt.Errorf("upgrade %s in %s: this run did not install it (its record is labelled %s=%q): a run upgrades only its own releases", release, namespace, RunLabel, before.Labels[RunLabel])
	}
	if c.HasCRDs() {
		return fmt.Errorf("chart %s has CustomResourceDefinitions in crds/: apply them with kube.apply", c.Source)
	}
	rel, err := t.helm.Upgrade(ctx, c, release, namespace, values)
	if err == nil {
		t.log.Info("release upgraded", "release", release, "namespace", namespace, "revision", rel.Revision)
		err = t.waitManifest(ctx, rel, nil, true)
	}
	if err != nil {
		t.log.Info("upgrade failed: rolling back", "release", release, "to", before.Revision, "err", err)
		if rerr := t.helm.Rollback(release, namespace, before.Revision); rerr != nil {
			err = errors.Join(err, fmt.Errorf("and rolling back to revision %d: %w", before.Revision, rerr))
		}
		return fmt.Errorf("upgrade %s in %s: %w", release, namespace, err)
	}
	return nil
}

// Uninstall uninstalls the release and waits until its objects are gone,
// until ctx's deadline. Helm has no context here: the deletes are issued
// whatever happens, and only the wait is bounded.
func (t *Target) Uninstall(ctx context.Context, release, namespace string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("uninstall %s in %s: %w", release, namespace, context.Cause(ctx))
	}
	rel, err := t.helm.Get(release, namespace)
	switch {
	case errors.Is(err, helm.ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("uninstall %s in %s: %w", release, namespace, err)
	case rel.Labels[RunLabel] != t.runID:
		// Installed by someone else between this run's journal entry and
		// its install: not this run's to remove.
		t.log.Warn("release left alone: not this run's", "release", release, "namespace", namespace, "label", rel.Labels[RunLabel])
		return nil
	}
	var timeout time.Duration
	if d, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(d), time.Second)
	}
	if err := t.helm.Uninstall(release, namespace, timeout); err != nil {
		return fmt.Errorf("uninstall %s in %s: %w", release, namespace, err)
	}
	t.log.Info("release uninstalled", "release", release, "namespace", namespace)
	return nil
}

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
		if path == nil {
			return t.waitManifest(ctx, rel, w.Objects, false)
		}
		objs, err := t.pick(rel, w.Objects)
		if err != nil {
			return err
		}
		return t.waitAll(ctx, objs, func(u *unstructured.Unstructured) (bool, string, error) { return matches(path, w.Value, u) })
	}
	var objs []object
	for _, o := range w.Objects {
		kind, name, _ := strings.Cut(o, "/")
		gvr, namespaced, err := t.resourceFor(kind)
		if err != nil {
			return err
		}
		ob := object{gvr: gvr, name: name, label: o}
		if namespaced {
			ob.namespace = w.Namespace
		}
		objs = append(objs, ob)
	}
	check := func(u *unstructured.Unstructured) (bool, string, error) {
		return readiness(u, isCustom(u.GetAPIVersion()))
	}
	if path != nil {
		check = func(u *unstructured.Unstructured) (bool, string, error) { return matches(path, w.Value, u) }
	}
	return t.waitAll(ctx, objs, check)
}

// Bootstrap is not offered yet: Kafka's clients need every broker's
// advertised address, which one port-forward does not give.
func (t *Target) Bootstrap(servers string) ([]string, error) {
	return nil, fmt.Errorf("kafka %s: reaching Kafka inside the cluster from the runner is not supported by this version: %w", servers, target.ErrNoKafka)
}

// Close stops the port-forwards; what the run installed is removed by
// teardown and the sweep.
func (t *Target) Close(context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, stop := range t.forwards {
		close(stop)
	}
	t.forwards = nil
	return nil
}

// object is one object to wait for.
type object struct {
	gvr       schema.GroupVersionResource
	namespace string
	name      string
	kind      string
	label     string // how the user or the manifest names it
}

func (o object) String() string {
	if o.namespace == "" {
		return o.label
	}
	return o.label + " in " + o.namespace
}

// resourceFor resolves "deployment", "deployments", "deployment.apps" or a
// custom resource's kind to its resource.
func (t *Target) resourceFor(kind string) (schema.GroupVersionResource, bool, error) {
	gr := schema.ParseGroupResource(strings.ToLower(kind))
	var gvr schema.GroupVersionResource
	err := t.withReset(func() (err error) {
		gvr, err = t.mapper.ResourceFor(gr.WithVersion(""))
		return err
	})
	if err != nil {
		return gvr, false, fmt.Errorf("kind %s: the cluster has no such resource: %w", kind, err)
	}
	gvk, err := t.mapper.KindFor(gvr)
	if err != nil {
		return gvr, false, err
	}
	m, err := t.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return gvr, false, err
	}
	return gvr, m.Scope.Name() == meta.RESTScopeNameNamespace, nil
}

// mapping resolves an object's apiVersion and kind.
func (t *Target) mapping(apiVersion, kind string) (*meta.RESTMapping, error) {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return nil, err
	}
	var m *meta.RESTMapping
	err = t.withReset(func() (err error) {
		m, err = t.mapper.RESTMapping(gv.WithKind(kind).GroupKind(), gv.Version)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s %s: the cluster has no such kind: %w", apiVersion, kind, err)
	}
	return m, nil
}

// withReset runs a lookup in the REST mapper, and once more after
// forgetting what it knows when it fails: a CRD may have been added since.
func (t *Target) withReset(lookup func() error) error {
	if err := lookup(); err == nil {
		return nil
	}
	t.mapper.Reset()
	return lookup()
}

// place resolves an object's resource and its namespace: its own, else
// def, for a namespaced kind; "" for a cluster-scoped one.
func (t *Target) place(u *unstructured.Unstructured, def string) (*meta.RESTMapping, string, error) {
	m, err := t.mapping(u.GetAPIVersion(), u.GetKind())
	if err != nil || m.Scope.Name() != meta.RESTScopeNameNamespace {
		return m, "", err
	}
	if ns := u.GetNamespace(); ns != "" {
		return m, ns, nil
	}
	return m, def, nil
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
		objs = append(objs, object{gvr: m.Resource, namespace: ns, name: u.GetName(), kind: u.GetKind(), label: strings.ToLower(u.GetKind()) + "/" + u.GetName()})
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
	explicit := len(names) > 0
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
				last[i] = why
				still = append(still, i)
			}
		}
		pending = still
		if len(pending) == 0 {
			return nil
		}
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

// isCustom reports whether apiVersion is of a group Kubernetes does not
// define itself: a custom resource, which reports readiness by a Ready
// condition if at all.
func isCustom(apiVersion string) bool {
	group, _, ok := strings.Cut(apiVersion, "/")
	if !ok {
		return false // the core group
	}
	return strings.Contains(group, ".") && !strings.HasSuffix(group, ".k8s.io")
}

func isWorkload(kind string) bool {
	switch kind {
	case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Pod", "Job":
		return true
	}
	return false
}

// readiness says whether an object is ready, and if not, why. Workloads
// follow their own status, as kubectl rollout status reads it; any other
// object with a Ready condition needs it True; an object without one is
// ready once it exists, unless needReady (a custom resource named in
// kube.wait must say Ready). A failed Job or Pod is a permanent error.
func readiness(u *unstructured.Unstructured, needReady bool) (bool, string, error) {
	gen := u.GetGeneration()
	// A status that says which generation it saw must have seen this one.
	observed, has, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	stale := has && observed < gen
	want := func(path ...string) int64 {
		v, found, _ := unstructured.NestedInt64(u.Object, path...)
		if !found {
			return 1
		}
		return v
	}
	have := func(path ...string) int64 { v, _, _ := unstructured.NestedInt64(u.Object, path...); return v }
	str := func(path ...string) string { v, _, _ := unstructured.NestedString(u.Object, path...); return v }
	conds := conditions(u)
	switch u.GetKind() {
	case "Deployment":
		n := want("spec", "replicas")
		updated, total, available := have("status", "updatedReplicas"), have("status", "replicas"), have("status", "availableReplicas")
		switch {
		case stale:
			return false, "its controller has not seen the latest spec yet", nil
		case conds["Progressing"].reason == "ProgressDeadlineExceeded":
			return false, "", fmt.Errorf("rollout stuck: %s", conds)
		case updated < n || total > updated || available < n:
			return false, fmt.Sprintf("%d of %d replicas available, %d updated, %d in all; %s", available, n, updated, total, conds), nil
		}
		return true, "", nil
	case "StatefulSet":
		n := want("spec", "replicas")
		ready, updated := have("status", "readyReplicas"), have("status", "updatedReplicas")
		rolling := str("spec", "updateStrategy", "type") != "OnDelete"
		partition, _, _ := unstructured.NestedInt64(u.Object, "spec", "updateStrategy", "rollingUpdate", "partition")
		switch {
		case !has && gen > 0:
			return false, "its controller has not seen it yet", nil
		case stale:
			return false, "its controller has not seen the latest spec yet", nil
		case ready < n || rolling && partition > 0 && updated < n-partition:
			return false, fmt.Sprintf("%d of %d replicas ready, %d updated (partition %d); %s", ready, n, updated, partition, conds), nil
		case rolling && partition == 0 && (updated < n || str("status", "currentRevision") != str("status", "updateRevision")):
			return false, fmt.Sprintf("%d of %d replicas ready, %d updated; %s", ready, n, updated, conds), nil
		}
		return true, "", nil
	case "ReplicaSet":
		n := want("spec", "replicas")
		if stale || have("status", "readyReplicas") < n {
			return false, fmt.Sprintf("%d of %d replicas ready; %s", have("status", "readyReplicas"), n, conds), nil
		}
		return true, "", nil
	case "DaemonSet":
		n := have("status", "desiredNumberScheduled")
		switch {
		case !has && gen > 0:
			return false, "its controller has not seen it yet", nil
		case stale:
			return false, "its controller has not seen the latest spec yet", nil
		case have("status", "numberAvailable") < n || str("spec", "updateStrategy", "type") != "OnDelete" && have("status", "updatedNumberScheduled") < n:
			return false, fmt.Sprintf("%d of %d pods available, %d updated", have("status", "numberAvailable"), n, have("status", "updatedNumberScheduled")), nil
		}
		return true, "", nil
	case "Pod":
		phase := str("status", "phase")
		if phase == "Succeeded" || conds["Ready"].status == "True" {
			return true, "", nil
		}
		if phase == "Failed" {
			return false, "", fmt.Errorf("pod failed: %s", conds)
		}
		return false, fmt.Sprintf("phase %s; %s", phase, conds), nil
	case "Job":
		if conds["Complete"].status == "True" {
			return true, "", nil
		}
		if conds["Failed"].status == "True" {
			return false, "", fmt.Errorf("job failed: %s", conds)
		}
		return false, fmt.Sprintf("%d succeeded, %d active; %s", have("status", "succeeded"), have("status", "active"), conds), nil
	}
	ready, hasReady := conds["Ready"]
	switch {
	case hasReady && ready.status == "True" && !stale:
		return true, "", nil
	case hasReady:
		return false, conds.String(), nil
	case !needReady:
		return true, "", nil
	case len(conds) == 0:
		return false, "no status conditions yet", nil
	}
	return false, "no Ready condition yet; " + conds.String(), nil
}

type condition struct{ status, reason, message string }

type conditionSet map[string]condition

func (cs conditionSet) String() string {
	if len(cs) == 0 {
		return "no conditions"
	}
	names := make([]string, 0, len(cs))
	for n := range cs {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		c := cs[n]
		parts[i] = n + "=" + c.status
		if c.reason != "" || c.message != "" {
			parts[i] += " (" + strings.TrimSpace(c.reason+": "+c.message) + ")"
		}
	}
	return "conditions " + strings.Join(parts, ", ")
}

func conditions(u *unstructured.Unstructured) conditionSet {
	list, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	cs := conditionSet{}
	for _, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			continue
		}
		str := func(k string) string { s, _ := m[k].(string); return s }
		if t := str("type"); t != "" {
			cs[t] = condition{status: str("status"), reason: str("reason"), message: str("message")}
		}
	}
	return cs
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

// Apply applies objects by server-side apply, labelled with the run.
func (t *Target) Apply(ctx context.Context, namespace string, objects []target.Object) error {
	// An object that exists and is not this run's is left alone, and so is
	// every other: teardown would delete what the run did not make.
	for _, o := range objects {
		u := &unstructured.Unstructured{Object: o}
		m, ns, err := t.place(u, namespace)
		if err != nil {
			if meta.IsNoMatchError(errors.Unwrap(err)) {
				continue // a kind an earlier object of this step defines
			}
			return err
		}
		found, err := t.dyn.Resource(m.Resource).Namespace(ns).Get(ctx, u.GetName(), metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return fmt.Errorf("apply %s %s: %w", strings.ToLower(u.GetKind()), u.GetName(), err)
		case found.GetLabels()[RunLabel] != t.runID:
			return fmt.Errorf("%s %s exists already and is not this run's: a run applies only objects it makes (delete it, or name another); nothing was applied: %w", strings.ToLower(u.GetKind()), u.GetName(), target.ErrNotCreated)
		}
	}
	for _, o := range objects {
		u := (&unstructured.Unstructured{Object: o}).DeepCopy()
		m, ns, err := t.place(u, namespace)
		if err != nil {
			return err
		}
		labels := u.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		labels[RunLabel] = t.runID
		u.SetLabels(labels)
		if ns != "" {
			u.SetNamespace(ns)
			if err := t.ensureNamespace(ctx, ns); err != nil {
				return err
			}
		}
		ri := t.dyn.Resource(m.Resource).Namespace(ns)
		body, err := yaml.Marshal(u.Object)
		if err != nil {
			return err
		}
		force := true
		if _, err := ri.Patch(ctx, u.GetName(), types.ApplyYAMLPatchType, body, metav1.PatchOptions{FieldManager: FieldManager, Force: &force}); err != nil {
			return fmt.Errorf("apply %s %s: %w", strings.ToLower(u.GetKind()), u.GetName(), err)
		}
		t.log.Info("applied", "kind", u.GetKind(), "name", u.GetName(), "namespace", u.GetNamespace())
		if u.GetKind() == "CustomResourceDefinition" {
			// Objects of the new kind may follow: wait until the API
			// server serves it.
			crd := object{gvr: m.Resource, name: u.GetName(), label: "customresourcedefinition/" + u.GetName()}
			established := func(u *unstructured.Unstructured) (bool, string, error) {
				c := conditions(u)["Established"]
				return c.status == "True", conditions(u).String(), nil
			}
			if err := t.waitAll(ctx, []object{crd}, established); err != nil {
				return err
			}
			t.mapper.Reset()
		}
	}
	return nil
}

// Delete deletes an object and waits until it is gone.
func (t *Target) Delete(ctx context.Context, ref target.ObjectRef) error {
	m, err := t.mapping(ref.APIVersion, ref.Kind)
	if err != nil {
		if meta.IsNoMatchError(errors.Unwrap(err)) {
			return nil // its kind is gone (a CRD deleted before): so is it
		}
		return err
	}
	ns := ""
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		ns = ref.Namespace
	}
	ri := t.dyn.Resource(m.Resource).Namespace(ns)
	cur, err := ri.Get(ctx, ref.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("delete %s: %w", ref, err)
	case cur.GetLabels()[RunLabel] != t.runID:
		t.log.Warn("object left alone: not this run's", "object", ref.String(), "label", cur.GetLabels()[RunLabel])
		return nil
	}
	bg := metav1.DeletePropagationBackground
	uid := cur.GetUID()
	if err := ri.Delete(ctx, ref.Name, metav1.DeleteOptions{PropagationPolicy: &bg, Preconditions: &metav1.Preconditions{UID: &uid}}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete %s: %w", ref, err)
	}
	for {
		_, err := ri.Get(ctx, ref.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			t.log.Info("deleted", "object", ref.String())
			return nil
		case err != nil && ctx.Err() == nil:
			return fmt.Errorf("delete %s: %w", ref, err)
		}
		select {
		case <-time.After(poll):
		case <-ctx.Done():
			return fmt.Errorf("delete %s: %w: it still exists", ref, context.Cause(ctx))
		}
	}
}
