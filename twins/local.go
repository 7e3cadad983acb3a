// Package twins runs the embedded twins of the charts in charts/: what
// `--target local` starts in place of a chart's Kubernetes objects. Each is a
// real implementation of the data-plane behaviour it stands for, over real
// protocols on loopback: a Kafka broker speaking the Kafka protocol
// (franz-go's kfake), Knative's in-memory channel and channel-based broker,
// and the Kafka channel, broker and source over that broker. Their knobs
// (capacity, latency, loss, duplication) make them ground truth for the
// runner's own measurements.
package twins

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/go-multierror"

	"github.com/perfrunner/runner/charts"
	"github.com/perfrunner/runner/internal/helm"
	"github.com/perfrunner/runner/target"
)

// Twin is one running twin.
type Twin interface {
	// Ready returns once the twin serves, or ctx ends.
	Ready(ctx context.Context) error
	// Close stops the twin, waiting for work in flight up to ctx.
	Close(ctx context.Context) error
}

// starter starts the twin of one release from the chart's merged values.
type starter func(ctx context.Context, l *Local, rel release, values map[string]any) (Twin, error)

var kinds = map[string]starter{}

func register(name string, s starter) { kinds[name] = s }

// Kinds returns the names of the twins, sorted.
func Kinds() []string {
	names := make([]string, 0, len(kinds))
	for n := range kinds {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// release is one installed chart on the local target.
type release struct {
	name, namespace string
	log             *slog.Logger
}

// installed is a release and what stands for it.
type installed struct {
	release
	chart   string
	twin    Twin
	kind    string
	objects map[string]bool // "kind/name" of every object the chart rendered, kind in lower case
}

// Local is the embedded target: helm.install renders the chart and starts
// its twin in this process. It is safe for concurrent use.
type Local struct {
	host target.Host
	log  *slog.Logger

	mu       sync.Mutex
	releases map[string]*installed // by namespace/name
	order    []string              // install order
}

// NewLocal returns the local target of a run.
func NewLocal(host target.Host, log *slog.Logger) *Local {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Local{host: host, log: log, releases: map[string]*installed{}}
}

var _ target.Target = (*Local)(nil)

// Open opens the local target of a run. In runner cleanup (no host) there
// is nothing to open: the twins died with the run's process, and what they
// held with them.
func Open(run target.Run) (target.Target, error) {
	if run.Host == nil {
		return nil, nil
	}
	return NewLocal(run.Host, run.Log.With("target", string(target.Local))), nil
}

func key(namespace, name string) string { return namespace + "/" + name }

// Install renders c for the release, as `helm template` would, and starts
// its twin with the merged values. A chart that declares no twin cannot be
// installed here.
func (l *Local) Install(ctx context.Context, c *helm.Chart, name, namespace string, values map[string]any) error {
	kind := c.Annotations[charts.TwinAnnotation]
	if c.Annotations[charts.ClusterOnlyAnnotation] == "true" {
		return fmt.Errorf("chart %s runs only in a cluster (annotation %s in Chart.yaml): use --target kubernetes", c.Source, charts.ClusterOnlyAnnotation)
	}
	if kind == "" {
		return fmt.Errorf("chart %s declares no embedded twin (annotation %s in Chart.yaml), so it cannot be installed on --target local", c.Source, charts.TwinAnnotation)
	}
	start, ok := kinds[kind]
	if !ok {
		return fmt.Errorf("chart %s names the twin %q, which does not exist (known: %s)", c.Source, kind, strings.Join(Kinds(), ", "))
	}
	r, err := c.Render(ctx, name, namespace, values)
	if err != nil {
		return err
	}
	objects, err := manifestObjects(r)
	if err != nil {
		return fmt.Errorf("chart %s rendered an unreadable manifest: %w", c.Source, err)
	}
	l.mu.Lock()
	if _, dup := l.releases[key(namespace, name)]; dup {
		l.mu.Unlock()
		return fmt.Errorf("release %s is already installed in namespace %s", name, namespace)
	}
	l.mu.Unlock()
	rel := release{name: name, namespace: namespace, log: l.log.With("release", name, "twin", kind)}
	twin, err := start(ctx, l, rel, r.Values)
	if err != nil {
		return fmt.Errorf("twin %s of release %s: %w", kind, name, err)
	}
	l.mu.Lock()
	l.releases[key(namespace, name)] = &installed{release: rel, chart: c.Source, twin: twin, kind: kind, objects: objects}
	l.order = append(l.order, key(namespace, name))
	l.mu.Unlock()
	rel.log.Info("twin started", "chart", c.Source)
	return nil
}

// Uninstall stops the release's twin. A release that is not installed is
// not an error: teardown may run after a failed install.
func (l *Local) Uninstall(ctx context.Context, name, namespace string) error {
	l.mu.Lock()
	in := l.releases[key(namespace, name)]
	delete(l.releases, key(namespace, name))
	for i, k := range l.order {
		if k == key(namespace, name) {
			l.order = append(l.order[:i], l.order[i+1:]...)
			break
		}
	}
	l.mu.Unlock()
	if in == nil {
		return nil
	}
	err := in.twin.Close(ctx)
	in.log.Info("twin stopped", "err", err)
	return err
}

// Wait waits until the twin of the release is ready. With objects
// ("kind/name"), it first checks that the release rendered each of them.
func (l *Local) Wait(ctx context.Context, name, namespace string, objects []string) error {
	l.mu.Lock()
	in := l.releases[key(namespace, name)]
	l.mu.Unlock()
	if in == nil {
		return fmt.Errorf("release %s is not installed in namespace %s", name, namespace)
	}
	for _, o := range objects {
		if !in.objects[strings.ToLower(o)] {
			have := make([]string, 0, len(in.objects))
			for k := range in.objects {
				have = append(have, k)
			}
			sort.Strings(have)
			return fmt.Errorf("release %s rendered no %s (it has %s)", name, o, strings.Join(have, ", "))
		}
	}
	return in.twin.Ready(ctx)
}

// Close stops every twin still running, newest first.
func (l *Local) Close(ctx context.Context) error {
	l.mu.Lock()
	order := append([]string(nil), l.order...)
	l.mu.Unlock()
	var errs *multierror.Error
	for i := len(order) - 1; i >= 0; i-- {
		ns, name, _ := strings.Cut(order[i], "/")
		if err := l.Uninstall(ctx, name, ns); err != nil {
			errs = multierror.Append(errs, err)
		}
	}
	return errs.ErrorOrNil()
}

// Releases returns namespace/name of the installed releases, in install order.
func (l *Local) Releases() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.order...)
}

// Sink resolves what the twins serve but do not name as sinks: kafka/<topic>
// is the topic on the embedded Kafka broker, as a kafka:// URL.
func (l *Local) Sink(s target.Sink) (string, error) {
	if s.Kind != target.SinkKafka {
		return "", fmt.Errorf("no sink %q", s)
	}
	k, err := l.kafka("")
	if err != nil {
		return "", fmt.Errorf("sink %s: %w", s, err)
	}
	return "kafka://" + strings.Join(k.addrs(), ",") + "/" + s.Name, nil
}

// Bootstrap resolves Kafka bootstrap servers as charts name them
// ("kafka:9092": the release's service) to the embedded broker's addresses.
func (l *Local) Bootstrap(servers string) ([]string, error) {
	host, _, _ := strings.Cut(strings.Split(servers, ",")[0], ":")
	host, _, _ = strings.Cut(host, ".") // kafka.ns.svc.cluster.local
	k, err := l.kafka(host)
	if err != nil {
		return nil, fmt.Errorf("bootstrap servers %s: %w", servers, err)
	}
	return k.addrs(), nil
}

// kafka returns the Kafka twin of the named release, or the only one when
// name is "".
func (l *Local) kafka(name string) (*kafkaTwin, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var found []*kafkaTwin
	var names []string
	for _, k := range l.order {
		in := l.releases[k]
		if kt, ok := in.twin.(*kafkaTwin); ok {
			names = append(names, in.name)
			if name == "" || in.name == name {
				found = append(found, kt)
			}
		}
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(names) == 0:
		return nil, fmt.Errorf("no Kafka is installed (a setup step must install the kafka chart first): %w", target.ErrNoKafka)
	case len(found) == 0:
		return nil, fmt.Errorf("no Kafka release named %q (installed: %s): %w", name, strings.Join(names, ", "), target.ErrNoKafka)
	}
	return nil, fmt.Errorf("more than one Kafka is installed (%s): a kafka/<topic> sink needs exactly one", strings.Join(names, ", "))
}

// manifestObjects returns "kind/name" of every object r renders, kind in
// lower case.
func manifestObjects(r *helm.Rendered) (map[string]bool, error) {
	objs, err := r.Objects()
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(objs))
	for _, o := range objs {
		out[strings.ToLower(o.Kind)+"/"+o.Name] = true
	}
	return out, nil
}

// decodeValues reads a chart's merged values into a twin's config.
func decodeValues(values map[string]any, into any) error {
	b, err := json.Marshal(values)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	return dec.Decode(into)
}

// sinkResolver resolves sink names in a twin's values.
type sinkResolver struct{ host target.Host }

// resolve returns the URL of a sink given as a name (receiver/perf) or a URL.
func (s sinkResolver) resolve(sink string) (string, error) {
	if target.IsURL(sink) {
		return sink, nil
	}
	// A channel named by its kind, as a cluster needs it, is the twin's
	// channel/<name>.
	for _, kind := range []string{"inmemorychannel/", "kafkachannel/"} {
		if name, ok := strings.CutPrefix(sink, kind); ok {
			sink = target.SinkName(target.SinkChannel, name)
		}
	}
	return s.host.Sink(sink)
}
