package steps

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/perfrunner/runner/charts"
	"github.com/perfrunner/runner/internal/helm"
	"github.com/perfrunner/runner/internal/strictyaml"
	"github.com/perfrunner/runner/target"
)

// Checker is a step kind that checks, before anything runs, what it needs
// from the steps before it (a chart and its values, a sink, a release's
// objects) and records in c what it provides to the steps after it.
type Checker interface {
	Check(c *Check) []FieldError
}

// Check is what a scenario's steps learn of each other before a run, in
// the order they run.
type Check struct {
	Ctx         context.Context
	ScenarioDir string
	Target      target.Kind

	// Once a step could not be checked (its spec is wrong, its chart did
	// not render), what it would provide is unknown: the checks that need
	// it are left to the run.
	unsureReleases, unsureReceivers bool

	receivers map[string]bool
	releases  map[string]checkedRelease
}

// checkedRelease is a release as an earlier step renders it.
type checkedRelease struct {
	twin    string // the chart's runner.perf/twin annotation
	objects []renderedObject
}

// NewCheck returns an empty check of a scenario whose file is in dir.
func NewCheck(ctx context.Context, dir string, kind target.Kind) *Check {
	return &Check{Ctx: ctx, ScenarioDir: dir, Target: kind, receivers: map[string]bool{}, releases: map[string]checkedRelease{}}
}

// Unchecked records that a step of kind could not be checked.
func (c *Check) Unchecked(kind string) {
	switch {
	case kind == "receiver":
		c.unsureReceivers = true
	case strings.HasPrefix(kind, "helm."):
		c.unsureReleases = true
	}
}

// renderedObject is one object of a rendered release.
type renderedObject helm.Object

func (o renderedObject) String() string { return strings.ToLower(o.Kind) + "/" + o.Name }

// matches reports whether ref (the kind of kind/name, as kube.wait takes
// it: a kind, kind.group, or a resource's plural) names o's kind.
func (o renderedObject) matches(ref string) bool {
	ref = strings.ToLower(ref)
	kind := strings.ToLower(o.Kind)
	for _, k := range []string{kind, plural(kind)} {
		if ref == k || o.Group != "" && ref == k+"."+o.Group {
			return true
		}
	}
	return false
}

// plural is the resource name Kubernetes derives from a lower-case kind.
func plural(kind string) string {
	switch {
	case strings.HasSuffix(kind, "s"), strings.HasSuffix(kind, "x"), strings.HasSuffix(kind, "ch"), strings.HasSuffix(kind, "sh"):
		return kind + "es"
	case strings.HasSuffix(kind, "y") && len(kind) > 1 && !strings.ContainsRune("aeiou", rune(kind[len(kind)-2])):
		return kind[:len(kind)-1] + "ies"
	}
	return kind + "s"
}

// checkRender loads h's chart, merges its values and renders it as the run
// would, and records the release's objects.
func (h *HelmInstall) checkRender(c *Check) []FieldError {
	fail := func(field, format string, args ...any) []FieldError {
		c.unsureReleases = true
		return []FieldError{{Field: field, Message: fmt.Sprintf(format, args...)}}
	}
	if h.remote() {
		// Checked when the run downloads it: validation stays offline.
		c.unsureReleases = true
		return nil
	}
	ch, err := LoadChart(h.Chart, c.ScenarioDir)
	if err != nil {
		msg := err.Error()
		if s := strictyaml.Suggest(h.Chart, ShippedCharts()); s != "" && !strings.ContainsRune(h.Chart, '/') {
			msg += fmt.Sprintf("; did you mean %s?", s)
		}
		return fail("chart", "%s", msg)
	}
	values, field, err := h.values(c.ScenarioDir)
	if err != nil {
		return fail(field, "%v", err)
	}
	// The image the run gives agents does not change what renders.
	withAgentImage(ch, values, charts.ImageRepository)
	r, err := ch.Render(c.Ctx, h.Release, "default", values)
	if err != nil {
		return fail("values", "chart %s does not render with these values: %s", ch.Name, helmMessage(ch.Name, err))
	}
	objs, err := r.Objects()
	if err != nil {
		return fail("chart", "chart %s: %v", ch.Name, err)
	}
	rel := checkedRelease{twin: ch.Annotations[charts.TwinAnnotation]}
	for _, o := range objs {
		rel.objects = append(rel.objects, renderedObject(o))
	}
	c.releases[h.Release] = rel
	return nil
}

// schemaLocation is where Helm's schema error puts a value: "- at '/a/b': ".
var schemaLocation = regexp.MustCompile(`- at '([^']*)': `)

// helmMessage shortens Helm's error to what it says about the values:
// "kafka:\n- at '/brokers': got string, want integer" becomes
// "brokers: got string, want integer".
func helmMessage(chart string, err error) string {
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "values don't meet the specifications of the schema(s) in the following chart(s):\n"); ok {
		msg = strings.TrimPrefix(rest, chart+":\n")
		msg = schemaLocation.ReplaceAllStringFunc(msg, func(m string) string {
			at := strings.Trim(schemaLocation.FindStringSubmatch(m)[1], "/")
			if at == "" {
				return ""
			}
			return strings.ReplaceAll(at, "/", ".") + ": "
		})
	}
	var lines []string
	for _, l := range strings.Split(msg, "\n") {
		if l = strings.Join(strings.Fields(l), " "); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "; ")
}

// Check renders the chart with its values.
func (h *HelmInstall) Check(c *Check) []FieldError { return h.checkRender(c) }

// Check renders the chart with its values, for a release an earlier step
// installed.
func (h *HelmUpgrade) Check(c *Check) []FieldError {
	if _, ok := c.releases[h.Spec.Release]; !ok && !c.unsureReleases {
		return []FieldError{{Field: "release", Message: fmt.Sprintf("no earlier step installs release %q%s", h.Spec.Release, c.suggestRelease(h.Spec.Release))}}
	}
	return h.Spec.checkRender(c)
}

// Check records the sink the receiver provides.
func (r *Receiver) Check(c *Check) []FieldError {
	c.receivers[r.name()] = true
	return nil
}

// Check resolves the sink against what earlier steps provide.
func (l *Load) Check(c *Check) []FieldError {
	if l.Sink == "" {
		return nil
	}
	sink, err := target.ParseSink(l.Sink)
	if err != nil {
		return []FieldError{{Field: "sink", Message: err.Error()}}
	}
	var have []string
	switch sink.Kind {
	case target.SinkReceiver:
		if c.unsureReceivers || c.unsureReleases || c.receivers[sink.Name] {
			return nil
		}
		for name := range c.receivers {
			have = append(have, target.SinkName(target.SinkReceiver, name))
		}
		// A release of the agents chart provides one too: its Service.
		for _, rel := range c.releases {
			for _, o := range rel.objects {
				if rel.twin == "agents" && o.Kind == "Service" {
					if o.Name == sink.Name {
						return nil
					}
					have = append(have, target.SinkName(target.SinkReceiver, o.Name))
				}
			}
		}
	case target.SinkChannel, target.SinkBroker:
		if c.unsureReleases {
			return nil
		}
		for _, rel := range c.releases {
			for _, o := range rel.objects {
				kind := strings.ToLower(o.Kind)
				if sink.Kind == target.SinkChannel && strings.HasSuffix(kind, "channel") || sink.Kind == target.SinkBroker && kind == "broker" {
					if o.Name == sink.Name {
						return nil
					}
					have = append(have, target.SinkName(sink.Kind, o.Name))
				}
			}
		}
	default:
		return nil // resolved by the target when the load starts
	}
	sort.Strings(have)
	msg := fmt.Sprintf("no earlier step provides sink %s", l.Sink)
	if len(have) == 0 {
		msg += fmt.Sprintf(" (none provides a %s/ sink)", sink.Kind)
	} else {
		msg += fmt.Sprintf(" (provided: %s)", strings.Join(have, ", "))
		if s := strictyaml.Suggest(l.Sink, have); s != "" {
			msg += fmt.Sprintf("; did you mean %s?", s)
		}
	}
	return []FieldError{{Field: "sink", Message: msg}}
}

// Check checks the objects against what the release renders.
func (k *KubeWait) Check(c *Check) []FieldError {
	if k.Release == "" || c.unsureReleases {
		return nil
	}
	rel, ok := c.releases[k.Release]
	objs := rel.objects
	if !ok {
		if c.Target == target.Kubernetes {
			return nil // it may be in the cluster already
		}
		return []FieldError{{Field: "release", Message: fmt.Sprintf("no earlier step installs release %q%s", k.Release, c.suggestRelease(k.Release))}}
	}
	var errs []FieldError
	for _, ref := range k.For {
		kind, name, _ := strings.Cut(ref, "/")
		found := false
		have := make([]string, len(objs))
		for i, o := range objs {
			have[i] = o.String()
			found = found || o.Name == name && o.matches(kind)
		}
		if found {
			continue
		}
		msg := fmt.Sprintf("release %s renders no %s (it renders %s)", k.Release, ref, strings.Join(have, ", "))
		if s := strictyaml.Suggest(strings.ToLower(ref), have); s != "" {
			msg += fmt.Sprintf("; did you mean %s?", s)
		}
		errs = append(errs, FieldError{Field: "for", Message: msg})
	}
	return errs
}

// suggestRelease returns a hint at the nearest release earlier steps
// install, or "".
func (c *Check) suggestRelease(name string) string {
	have := make([]string, 0, len(c.releases))
	for r := range c.releases {
		have = append(have, r)
	}
	if s := strictyaml.Suggest(name, have); s != "" {
		return fmt.Sprintf("; did you mean %q?", s)
	}
	return ""
}
