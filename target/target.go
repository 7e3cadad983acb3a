package target

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/perfrunner/runner/internal/helm"
	"github.com/perfrunner/runner/results"
)

// Kind names where the systems under test live.
type Kind string

// The kinds of target.
const (
	Local      Kind = "local"      // embedded twins in the runner's own process
	Kubernetes Kind = "kubernetes" // a cluster reached through a kubeconfig
)

// Kinds are the kinds of target, the default first.
var Kinds = []Kind{Local, Kubernetes}

// ParseKind returns the kind named s; "" is Local.
func ParseKind(s string) (Kind, error) {
	switch k := Kind(s); k {
	case "":
		return Local, nil
	case Local, Kubernetes:
		return k, nil
	}
	return "", fmt.Errorf("target %q: must be local or kubernetes", s)
}

// Target is where helm.install puts a chart: the embedded twins on local,
// a cluster on kubernetes. Every method must return promptly once ctx ends.
type Target interface {
	// Install installs a chart as a release with values.
	Install(ctx context.Context, c *helm.Chart, release, namespace string, values map[string]any) error
	// Uninstall removes a release; one that is not installed is no error.
	Uninstall(ctx context.Context, release, namespace string) error
	// Wait waits until a release, and each of objects ("kind/name") it
	// rendered, is ready.
	Wait(ctx context.Context, release, namespace string, objects []string) error
	// Sink resolves a sink that no step claims (kafka/<topic>,
	// service/<name>:<port>, pod/<name>:<port>) to a URL.
	Sink(s Sink) (string, error)
	// Bootstrap resolves Kafka bootstrap servers as charts name them; the
	// error wraps ErrNoKafka when no such Kafka is installed.
	Bootstrap(servers string) ([]string, error)
	// Close removes whatever is still installed.
	Close(ctx context.Context) error
}

// Cluster is what a target with a Kubernetes API offers beyond Target:
// the kube.* steps and helm.upgrade use it. The local target has none.
type Cluster interface {
	Target
	Collector
	// Namespace is the run's namespace (-n): where steps that name none go.
	Namespace() string
	// Upgrade upgrades an installed release to a chart with values, and
	// waits until it is ready; on failure it rolls the release back.
	Upgrade(ctx context.Context, c *helm.Chart, release, namespace string, values map[string]any) error
	// Apply creates or updates objects by server-side apply, labelled with
	// the run; a namespaced object without a namespace goes to namespace.
	Apply(ctx context.Context, namespace string, objects []Object) error
	// Delete deletes an object and waits until it is gone; one that does
	// not exist is no error.
	Delete(ctx context.Context, o ObjectRef) error
	// WaitFor waits until every object of w is ready, or matches w's
	// JSONPath condition.
	WaitFor(ctx context.Context, w WaitSpec) error
}

// Checker is a target that checks, once, what a scenario requires of it.
type Checker interface {
	// Check looks at the one object w names: nil when it exists and is
	// ready (or w's JSONPath prints w's value), else what was found; the
	// error wraps ErrMissing when the object or its kind is not there.
	Check(ctx context.Context, w WaitSpec) error
}

// ErrMissing is the error of a check whose object is not in the cluster.
var ErrMissing = errors.New("missing")

// Missing returns an error that says what is missing and wraps ErrMissing.
func Missing(format string, args ...any) error {
	return missingError(fmt.Sprintf(format, args...))
}

type missingError string

func (e missingError) Error() string        { return string(e) }
func (e missingError) Is(target error) bool { return target == ErrMissing }

// Collector writes what a person needs to see why a run failed.
type Collector interface {
	// Namespaces returns the namespaces the run used, sorted.
	Namespaces() []string
	// Collect writes pod logs, pod states and events of namespaces under
	// dir; nil namespaces means every namespace the run used.
	Collect(ctx context.Context, dir string, namespaces []string) error
}

// Claimer is a target that other runs may use too (a cluster): a run holds
// a claim on it from before its setup until its teardown is done.
type Claimer interface {
	// Hold takes the run's claim and renews it until release is called.
	Hold(ctx context.Context) (release func(), err error)
	// CheckStale refuses to go on while another run holds a claim, or
	// while an unfinished earlier run's objects are left; with clean it
	// deletes the latter instead. say shows a line to the person.
	CheckStale(ctx context.Context, clean bool, say func(string)) error
}

// Sweeper is a target that finds what a run made by a label, so that what
// the journal missed is removed too.
type Sweeper interface {
	// Sweep deletes whatever still carries the run's label.
	Sweep(ctx context.Context) (Swept, error)
}

// Swept is what a sweep did.
type Swept struct {
	Deleted   int      // objects deleted
	Label     string   // the label they carried, as key=value
	Unchecked []string // kinds the sweep could not look in
}

// Located is a target that says where it is, for the run record.
type Located interface {
	Location() Location
}

// Location is where a run on a cluster ran. It never holds credentials.
type Location struct {
	RunID     string `json:"-"`
	Context   string `json:"context"`
	Server    string `json:"server"`
	Version   string `json:"version"`
	Namespace string `json:"namespace"`
	Label     string `json:"label"` // the selector of the run's objects
}

// Host is what a target needs from the run it serves: the sinks steps
// claim, and the run's measuring receivers (a twin may start one).
type Host interface {
	// Sink returns the URL of a sink another step named, e.g. receiver/perf.
	Sink(name string) (string, error)
	// ClaimSink names a sink; a name already taken is an error.
	ClaimSink(name, url string) error
	// ReleaseSink forgets a sink's name if it still names url.
	ReleaseSink(name, url string)
	// StartReceiver starts the run's measuring receiver under name and
	// returns its URL and how to stop it.
	StartReceiver(name string) (url string, stop func(context.Context) error, err error)
}

// Run is what a target is opened for.
type Run struct {
	Kind Kind         // the kind of target to open
	ID   string       // the run's id: its directory's name
	Dir  string       // the run directory
	Log  *slog.Logger // the run's log
	Host Host         // nil in runner cleanup, which runs no step
	// Platform, when set, is the name of the platform that runner
	// platform installs or uninstalls: what the target creates belongs to
	// it, not to the run, and outlives the run.
	Platform string
	// Recorded is where the run record says the run was, in runner
	// cleanup; nil for a new run.
	Recorded *Location
}

// Opener opens the target of one run.
type Opener func(Run) (Target, error)

// Object is a manifest's object, decoded.
type Object = map[string]any

// ObjectRef names one object.
type ObjectRef struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
}

func (o ObjectRef) String() string {
	if o.Namespace == "" {
		return strings.ToLower(o.Kind) + "/" + o.Name
	}
	return o.Namespace + "/" + strings.ToLower(o.Kind) + "/" + o.Name
}

// WaitSpec says what kube.wait waits for.
type WaitSpec struct {
	Release   string   // a release: its objects, or only Objects of it
	Namespace string   // the release's namespace, and that of Objects
	Objects   []string // "kind/name" (kind may be plural, or kind.group)
	JSONPath  string   // with Value: a condition instead of readiness
	Value     string
}

// ErrNoKafka is the error of a target with no Kafka to resolve.
var ErrNoKafka = errors.New("no such Kafka is installed")

// ErrNotCreated, wrapped in an error, says that nothing was created: what
// was to be made was found there already, and is not the run's to remove.
var ErrNotCreated = errors.New("nothing was created")

// AgentPod is one pod of an agents release, reached from the runner.
type AgentPod struct {
	Name    string // the pod
	Node    string
	Image   string // as the pod spec names it
	ImageID string // the image the node runs, by digest
	Control string // host:port on this machine that reaches its control port
}

// Agents is a target whose agents' pods the runner reaches from its own
// machine.
type Agents interface {
	// ForwardAgents returns the ready pods of release in namespace, in
	// the order of their names' ordinals, each with a port-forward to its
	// container port named port that lasts until Close.
	ForwardAgents(ctx context.Context, release, namespace, port string) ([]AgentPod, error)
}

type statusKey struct{}

// WithStatus returns ctx carrying report, through which a target says what
// a long call (a wait for readiness) is waiting for.
func WithStatus(ctx context.Context, report func(string)) context.Context {
	return context.WithValue(ctx, statusKey{}, report)
}

// Status reports status through ctx's WithStatus function, if it has one.
func Status(ctx context.Context, status string) {
	if report, ok := ctx.Value(statusKey{}).(func(string)); ok && report != nil {
		report(status)
	}
}

// PodRecord is one container of a pod of the systems under test, for the
// run record.
type PodRecord struct {
	Namespace string `json:"namespace"`
	Pod       string `json:"pod"`
	Container string `json:"container"`
	Node      string `json:"node,omitempty"`
	Image     string `json:"image"`              // as the pod spec names it
	ImageID   string `json:"image_id,omitempty"` // the image the node runs, by digest
}

// Inventory is a target that lists the pods of namespaces.
type Inventory interface {
	// Pods returns every container of the pods in namespaces, sorted.
	Pods(ctx context.Context, namespaces []string) ([]PodRecord, error)
}

// Observer is a target that reads the CPU and memory of pods' containers.
type Observer interface {
	// Observe returns what reads, at each call, every container of the
	// pods in namespaces; agents ("namespace/pod") are the run's agents,
	// counted apart from the systems under test.
	Observe(namespaces, agents []string) results.ResourceReader
}

// Profiler is a target whose pods' profiles the runner fetches.
type Profiler interface {
	// ProfilePods returns the running pods that spec names: namespace/name
	// (a pod's name, or its start: a Deployment's name), or
	// namespace/key=value (a label selector); each names the container
	// that declares port, else its first.
	ProfilePods(ctx context.Context, spec string, port int) ([]ProfiledPod, error)
	// FetchProfile GETs path (e.g. /debug/pprof/heap) from a pod's port.
	FetchProfile(ctx context.Context, pod ProfiledPod, port int, path string) ([]byte, error)
}

// ProfiledPod is a pod whose profiles are fetched.
type ProfiledPod struct {
	Namespace string
	Pod       string
	Container string // the container that declares the port, else the first
}

// Pruner is a target that deletes objects by a label selector.
type Pruner interface {
	// Prune deletes every object of kind (in namespace, for a namespaced
	// kind) that selector matches and that belongs to the target's owner
	// — or, for a platform, every one that selector matches: what a
	// platform's operator made is the platform's — and waits until they
	// are gone. It returns how many it deleted.
	Prune(ctx context.Context, kind, namespace, selector string) (int, error)
}

// Restarter is a target that restarts Deployments.
type Restarter interface {
	// Restart rolls out new pods of the Deployments named, or that
	// selector matches, in namespace (as kubectl rollout restart does),
	// and waits until each is ready again. It returns their names.
	Restart(ctx context.Context, namespace string, names []string, selector string) ([]string, error)
}
