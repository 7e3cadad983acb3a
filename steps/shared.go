package steps

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/go-multierror"

	"github.com/perfrunner/runner/measure"
	"github.com/perfrunner/runner/pace"
	"github.com/perfrunner/runner/report"
	"github.com/perfrunner/runner/results"
	"github.com/perfrunner/runner/target"
)

// RunInfo describes the run the steps belong to.
type RunInfo struct {
	Dir        string
	Scenario   string
	PaceSet    string
	Target     target.Kind
	Pace       []pace.Step // the run's pace: what load steps send unless they say otherwise
	Thresholds []results.Threshold
	// ScenarioDir is the directory of the scenario file: relative paths
	// in steps (charts, values files) are read from it.
	ScenarioDir string
	// AgentImage is the image an agents chart's pods run when its values
	// name none: the runner's own.
	AgentImage string
	// Context is how the run was produced, for report.md.
	Context *results.RunContext
}

// Shared is what the steps of one run share: named sinks, the run's
// measurement and the in-process receivers. It is safe for concurrent use.
type Shared struct {
	Info RunInfo
	// Say shows a line to the person running the scenario; nil for none.
	Say func(string)

	mu          sync.Mutex
	sinks       map[string]string
	measurement *measure.Measurement
	target      target.Target
	finished    bool
	breaches    []results.Breach
	summary     *results.Summary // the finished measurement's
	images      []string         // the graphs rendered of it
	agents      []*agentsRelease // the run's agents releases on a cluster, as installed
	charts      []ChartRecord    // the releases installed, in order
	observed    []string         // the namespaces of the platforms the run requires
}

// NewShared returns the shared state of a run.
func NewShared(info RunInfo) *Shared {
	return &Shared{Info: info, sinks: map[string]string{}}
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
	m, err := measure.Open(s.Info.Dir, results.Meta{Scenario: s.Info.Scenario, PaceSet: s.Info.PaceSet, Target: string(s.Info.Target)}, s.Info.Thresholds)
	if err != nil {
		return nil, err
	}
	s.measurement = m
	return m, nil
}

// SetObserved names the namespaces whose pods are the systems under test
// beyond the run's own: those of the platforms it requires.
func (s *Shared) SetObserved(namespaces []string) {
	s.mu.Lock()
	s.observed = append([]string(nil), namespaces...)
	s.mu.Unlock()
}

// observer returns what reads the resource use of the systems under test
// while a load runs: on local, the runner's own process; on a cluster that
// can, every container of the pods in the required platforms' namespaces
// and the run's, the agents apart; nil when the target cannot.
func (s *Shared) observer() results.ResourceReader {
	if s.Info.Target == target.Local {
		return measure.Self{}
	}
	t, _ := s.Target()
	o, ok := t.(target.Observer)
	if !ok {
		return nil
	}
	s.mu.Lock()
	namespaces := append([]string(nil), s.observed...)
	var agents []string
	for _, a := range s.agents {
		for _, p := range a.pods {
			agents = append(agents, a.namespace+"/"+p.Name)
		}
	}
	s.mu.Unlock()
	if c, ok := t.(target.Collector); ok {
		for _, ns := range c.Namespaces() {
			if !slices.Contains(namespaces, ns) {
				namespaces = append(namespaces, ns)
			}
		}
	}
	return o.Observe(namespaces, agents)
}

// SetTarget sets the run's target.
func (s *Shared) SetTarget(t target.Target) {
	s.mu.Lock()
	s.target = t
	s.mu.Unlock()
}

// Cluster returns the run's target as a cluster, or an error naming the
// step kind that needs one.
func (s *Shared) Cluster(kind string) (target.Cluster, error) {
	t, err := s.Target()
	if err != nil {
		return nil, err
	}
	c, ok := t.(target.Cluster)
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
	if t, _ := s.Target(); t != nil {
		if c, ok := t.(target.Cluster); ok {
			return c.Namespace()
		}
	}
	return defaultNamespace
}

// Target returns the run's target.
func (s *Shared) Target() (target.Target, error) {
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

// Sink returns the URL of a named sink: one a step claimed, or one the
// target resolves (kafka/<topic>, service/…, pod/…). The error lists the
// known ones.
func (s *Shared) Sink(name string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if url, ok := s.sinks[name]; ok {
		return url, nil
	}
	if sink, err := target.ParseSink(name); err == nil && !sink.Kind.Claimed() && s.target != nil {
		return s.target.Sink(sink)
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
	_, taken := s.sinks[target.SinkName(target.SinkReceiver, name)]
	s.mu.Unlock()
	if taken {
		return "", nil, fmt.Errorf("a receiver named %q is already running", name)
	}
	// The measurement refuses a second receiver of one name itself.
	url, err := m.Receive(name, addr)
	if err != nil {
		return "", nil, err
	}
	s.mu.Lock()
	s.sinks[target.SinkName(target.SinkReceiver, name)] = url
	s.mu.Unlock()
	return url, func(ctx context.Context) error { return s.StopReceiver(ctx, name) }, nil
}

// StopReceiver stops the named receiver, if this process runs it.
func (s *Shared) StopReceiver(ctx context.Context, name string) error {
	s.mu.Lock()
	m := s.measurement
	delete(s.sinks, target.SinkName(target.SinkReceiver, name))
	s.mu.Unlock()
	if m == nil {
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
	// A graph that fails to render loses no measurement: say so once and
	// go on.
	var images []string
	if why := report.NothingToDraw(sum); why != "" {
		s.say("no graph drawn: " + why)
	} else if err := report.WritePlots(dir, sum); err != nil {
		return err
	} else if rendered, err := report.Render(dir, "png"); err != nil {
		images = rendered
		s.say(fmt.Sprintf("some graphs not drawn (gnuplot's output in %s): %s", report.GnuplotLog, strings.ReplaceAll(err.Error(), "\n", "; ")))
	} else {
		images = rendered
	}
	if err := report.WriteReport(dir, report.Report{Summary: sum, Images: images, Context: s.Info.Context}); err != nil {
		return err
	}
	s.mu.Lock()
	s.breaches = sum.Breaches
	s.summary, s.images = &sum, images
	s.mu.Unlock()
	return nil
}

// Summary returns the finished measurement's summary; nil when nothing
// was measured.
func (s *Shared) Summary() *results.Summary {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.summary
}

// Conclude writes how the run ended into report.md, once it has; the
// report of a run that measured nothing says so, and why.
func (s *Shared) Conclude(end report.Ending) error {
	s.mu.Lock()
	sum, images := s.summary, s.images
	s.mu.Unlock()
	if sum == nil {
		sum = &results.Summary{Scenario: s.Info.Scenario, PaceSet: s.Info.PaceSet, Target: string(s.Info.Target)}
	}
	return report.WriteReport(s.Info.Dir, report.Report{Summary: *sum, Images: images, Context: s.Info.Context, Ending: &end})
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
// agents' receivers, the target's releases, then the other receivers.
func (s *Shared) Close(ctx context.Context) error {
	var errs *multierror.Error
	// Agents' receipts first: their pulls go through the target's
	// port-forwards, which closing it stops.
	s.mu.Lock()
	target, agents := s.target, append([]*agentsRelease(nil), s.agents...)
	s.mu.Unlock()
	for _, a := range agents {
		if err := s.detachAgents(ctx, a.release, a.namespace); err != nil {
			errs = multierror.Append(errs, err)
		}
	}
	if target != nil {
		if err := target.Close(ctx); err != nil {
			errs = multierror.Append(errs, err)
		}
	}
	s.mu.Lock()
	m := s.measurement
	s.mu.Unlock()
	if m != nil {
		if err := m.StopReceivers(ctx); err != nil {
			errs = multierror.Append(errs, err)
		}
	}
	if err := s.FinishMeasurement(); err != nil {
		errs = multierror.Append(errs, err)
	}
	return errs.ErrorOrNil()
}
