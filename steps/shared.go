package steps

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/go-multierror"

	"github.com/perfrunner/runner/internal/helm"
	"github.com/perfrunner/runner/measure"
	"github.com/perfrunner/runner/pace"
	"github.com/perfrunner/runner/report"
	"github.com/perfrunner/runner/results"
)

// RunInfo describes the run the steps belong to.
type RunInfo struct {
	Dir        string
	Scenario   string
	PaceSet    string
	Target     string
	Pace       []pace.Step // the run's pace: what load steps send unless they say otherwise
	Thresholds []results.Threshold
	// ScenarioDir is the directory of the scenario file: relative paths
	// in steps (charts, values files) are read from it.
	ScenarioDir string
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
	// Sink resolves a sink name no step named, e.g. kafka/<topic>.
	Sink(name string) (string, error)
	// Bootstrap resolves Kafka bootstrap servers as charts name them; the
	// error wraps ErrNoKafka when no such Kafka is installed.
	Bootstrap(servers string) ([]string, error)
	// Close removes whatever is still installed.
	Close(ctx context.Context) error
}

// Cluster is what a target with a Kubernetes API offers beyond Target:
// the kube.* steps and helm.upgrade use it. The local target has none.
type Cluster interface {
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
	// Collect writes pod logs, pod states and events of namespaces under
	// dir; nil namespaces means every namespace the run used.
	Collect(ctx context.Context, dir string, namespaces []string) error
}

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

// Shared is what the steps of one run share: named sinks, the run's
// measurement and the in-process receivers. It is safe for concurrent use.
type Shared struct {
	Info RunInfo
	// Say shows a line to the person running the scenario; nil for none.
	Say func(string)

	mu          sync.Mutex
	sinks       map[string]string
	receivers   map[string]bool // the names of receivers this process runs
	measurement *measure.Measurement
	target      Target
	finished    bool
	breaches    []results.Breach
}

// NewShared returns the shared state of a run.
func NewShared(info RunInfo) *Shared {
	return &Shared{Info: info, sinks: map[string]string{}, receivers: map[string]bool{}}
}

// Measurement returns the run's measurement, opening it on first use.
func (s *Shared) Measurement() (*measure.Measurement, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.measurement != nil {
		return s.measurement, nil
	}
	if s.finished {
		return nil, measure.ErrFinished
	}
	m, err := measure.Open(s.Info.Dir, results.Meta{Scenario: s.Info.Scenario, PaceSet: s.Info.PaceSet, Target: s.Info.Target}, s.Info.Thresholds)
	if err != nil {
		return nil, err
	}
	s.measurement = m
	return m, nil
}

// SetTarget sets the run's target.
func (s *Shared) SetTarget(t Target) {
	s.mu.Lock()
	s.target = t
	s.mu.Unlock()
}

// Cluster returns the run's target as a cluster, or an error naming the
// step kind that needs one.
func (s *Shared) Cluster(kind string) (Cluster, error) {
	t, err := s.Target()
	if err != nil {
		return nil, err
	}
	c, ok := t.(Cluster)
	if !ok {
		return nil, fmt.Errorf("%s needs a Kubernetes cluster (--target kubernetes); target %s has none", kind, s.Info.Target)
	}
	return c, nil
}

// Namespace returns ns, else the run's namespace: the cluster's (-n) on
// kubernetes, default elsewhere.
func (s *Shared) Namespace(ns string) string {
	if ns != "" {
		return ns
	}
	if s != nil {
		if t, _ := s.Target(); t != nil {
			if c, ok := t.(Cluster); ok {
				return c.Namespace()
			}
		}
	}
	return defaultNamespace
}

// Target returns the run's target.
func (s *Shared) Target() (Target, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.target == nil {
		return nil, fmt.Errorf("charts cannot be installed on target %q by this version of the runner; use --target local", s.Info.Target)
	}
	return s.target, nil
}

// ClaimSink names a sink's URL; a name already taken is an error, so that
// two releases cannot take each other's sink.
func (s *Shared) ClaimSink(name, url string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, taken := s.sinks[name]; taken {
		return fmt.Errorf("the sink %s is taken already (by %s): give this one another name", name, old)
	}
	s.sinks[name] = url
	return nil
}

// ReleaseSink forgets a sink's name if it still names url.
func (s *Shared) ReleaseSink(name, url string) {
	s.mu.Lock()
	if s.sinks[name] == url {
		delete(s.sinks, name)
	}
	s.mu.Unlock()
}

// Sink returns the URL of a named sink: one a step named, or one the target
// resolves (kafka/<topic>). The error lists the known ones.
func (s *Shared) Sink(name string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if url, ok := s.sinks[name]; ok {
		return url, nil
	}
	if s.target != nil && (strings.HasPrefix(name, "kafka/") || strings.HasPrefix(name, "service/") || strings.HasPrefix(name, "pod/")) {
		return s.target.Sink(name)
	}
	known := make([]string, 0, len(s.sinks))
	for n := range s.sinks {
		known = append(known, n)
	}
	sort.Strings(known)
	return "", fmt.Errorf("no sink %q (a setup step must create it; known: %v)", name, known)
}

// StartReceiver starts an in-process receiver that feeds the run's
// measurement, names it as the sink receiver/<name>, and returns its URL and
// how to stop it.
func (s *Shared) StartReceiver(name string) (string, func(context.Context) error, error) {
	return s.startReceiver(name, "127.0.0.1:0")
}

func (s *Shared) startReceiver(name, addr string) (string, func(context.Context) error, error) {
	m, err := s.Measurement()
	if err != nil {
		return "", nil, err
	}
	s.mu.Lock()
	dup := s.receivers[name]
	_, taken := s.sinks["receiver/"+name]
	s.mu.Unlock()
	if dup || taken {
		return "", nil, fmt.Errorf("a receiver named %q is already running", name)
	}
	url, err := m.Receive(name, addr)
	if err != nil {
		return "", nil, err
	}
	s.mu.Lock()
	s.receivers[name] = true
	s.sinks["receiver/"+name] = url
	s.mu.Unlock()
	return url, func(ctx context.Context) error { return s.stopReceiver(ctx, name) }, nil
}

// stopReceiver stops the named receiver, if this process runs it.
func (s *Shared) stopReceiver(ctx context.Context, name string) error {
	s.mu.Lock()
	running, m := s.receivers[name], s.measurement
	delete(s.receivers, name)
	delete(s.sinks, "receiver/"+name)
	s.mu.Unlock()
	if !running || m == nil {
		return nil
	}
	return m.StopReceiver(ctx, name)
}

// FinishMeasurement closes the run's measurement: the last seconds of the
// timeline and the final summary are written. Later load steps fail.
func (s *Shared) FinishMeasurement() error {
	s.mu.Lock()
	m, already := s.measurement, s.finished
	s.finished = true
	s.mu.Unlock()
	if m == nil || already {
		return nil
	}
	sum, err := m.Finish()
	if err != nil {
		return err
	}
	return s.report(sum)
}

// report writes the plots and report.md, rendering the plots when gnuplot
// is installed and saying so once when it is not.
func (s *Shared) report(sum results.Summary) error {
	dir := s.Info.Dir
	if err := report.WritePlots(dir, sum); err != nil {
		return err
	}
	// A graph that fails to render loses no measurement: say so and go on.
	images, err := report.Render(dir, "png")
	if err != nil {
		s.say(err.Error())
	}
	if err := report.WriteReport(dir, sum, images); err != nil {
		return err
	}
	if sum.SustainedRPS > 0 {
		s.say(fmt.Sprintf("sustained rate %g events/s; report in %s", sum.SustainedRPS, filepath.Join(dir, report.ReportFile)))
	}
	for _, p := range sum.Paces {
		if p.Verdict == "broken" {
			s.say(fmt.Sprintf("pace step %d (%g/s) broke: %s", p.Index+1, p.TargetRPS, p.Reason))
		}
	}
	s.mu.Lock()
	s.breaches = sum.Breaches
	s.mu.Unlock()
	return nil
}

// Breaches returns the thresholds the finished measurement breached.
func (s *Shared) Breaches() []results.Breach {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.breaches
}

func (s *Shared) say(line string) {
	if s.Say != nil {
		s.Say(line)
	}
}

// Close stops whatever the run's steps left running in this process: the
// target's releases first, then the receivers.
func (s *Shared) Close(ctx context.Context) error {
	var errs *multierror.Error
	s.mu.Lock()
	target := s.target
	s.mu.Unlock()
	if target != nil {
		if err := target.Close(ctx); err != nil {
			errs = multierror.Append(errs, err)
		}
	}
	s.mu.Lock()
	names := make([]string, 0, len(s.receivers))
	for n := range s.receivers {
		names = append(names, n)
	}
	s.mu.Unlock()
	for _, n := range names {
		if err := s.stopReceiver(ctx, n); err != nil {
			errs = multierror.Append(errs, err)
		}
	}
	if err := s.FinishMeasurement(); err != nil {
		errs = multierror.Append(errs, err)
	}
	return errs.ErrorOrNil()
}
