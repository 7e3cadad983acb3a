package kube

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"

	"github.com/perfrunner/runner/internal/helm"
	"github.com/perfrunner/runner/target"
)

// RunLabel is carried by every object a run creates; its value is the run's
// id (the run directory's name).
const RunLabel = "runner.perf/run-id"

// PlatformLabel is carried, instead of RunLabel, by every object that
// runner platform install creates; its value is the platform's name. Runs
// never sweep such objects nor count them as an unfinished run's.
const PlatformLabel = "runner.perf/platform"

// FieldManager is the runner's name in server-side apply.
const FieldManager = "runner"

// poll is how often a wait looks again.
const poll = 250 * time.Millisecond

// Target installs charts into a cluster and waits for them; it implements
// target.Target and target.Cluster. Everything it creates carries its
// owner's label: RunLabel with the run's id, or PlatformLabel with a
// platform's name.
type Target struct {
	cluster *Connection
	runID   string
	key     string // the owner's label: RunLabel or PlatformLabel
	host    target.Host
	log     *slog.Logger
	dyn     dynamic.Interface
	disc    discovery.CachedDiscoveryInterface
	mapper  meta.ResettableRESTMapper
	helm    *helm.Client

	mu         sync.Mutex
	namespaces map[string]bool     // the namespaces the run used
	forwards   []chan struct{}     // closing one stops a port-forward
	sinks      map[string][]string // per release ("namespace/name"), the sinks it claimed
}

var (
	_ target.Target  = (*Target)(nil)
	_ target.Cluster = (*Target)(nil)
	_ target.Checker = (*Target)(nil)
)

// NewTarget returns the target of run runID on cl.
func NewTarget(cl *Connection, runID string, log *slog.Logger) (*Target, error) {
	return newTarget(cl, RunLabel, runID, log)
}

// NewPlatformTarget returns a target whose objects belong to the platform
// name rather than to a run.
func NewPlatformTarget(cl *Connection, name string, log *slog.Logger) (*Target, error) {
	return newTarget(cl, PlatformLabel, name, log)
}

func newTarget(cl *Connection, key, runID string, log *slog.Logger) (*Target, error) {
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
		key:        key,
		log:        log,
		dyn:        dyn,
		disc:       disc,
		mapper:     restmapper.NewDeferredDiscoveryRESTMapper(disc),
		namespaces: map[string]bool{},
		sinks:      map[string][]string{},
	}
	t.helm = &helm.Client{
		Kubeconfig: cl.Kubeconfig,
		Context:    cl.Context,
		Labels:     map[string]string{key: runID},
		Log:        func(format string, args ...any) { log.Debug(fmt.Sprintf(format, args...), "from", "helm") },
	}
	return t, nil
}

// RunID returns the id the target labels objects with.
func (t *Target) RunID() string { return t.runID }

// owns reports whether labels are those of the target's owner.
func (t *Target) owns(labels map[string]string) bool { return labels[t.key] == t.runID }

// ownerOf names the owner labels say an object has, for messages.
func (t *Target) ownerOf(labels map[string]string) string {
	for _, k := range []string{RunLabel, PlatformLabel} {
		if v, ok := labels[k]; ok {
			return k + "=" + v
		}
	}
	return "no runner label"
}

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
	obj.SetLabels(map[string]string{t.key: t.runID})
	_, err = t.dyn.Resource(nsRes).Create(ctx, obj, metav1.CreateOptions{FieldManager: FieldManager})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", ns, err)
	}
	t.log.Info("namespace created", "namespace", ns)
	return nil
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
