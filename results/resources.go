package results

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ResourcesFile holds every reading of the observed containers' counters,
// one line each, appended as they are read: the figures of summary.json and
// timeline.tsv are computed from it, and can be again.
const ResourcesFile = "resources.tsv"

var resourcesHeader = "second\tunix_ms\tgroup\tnamespace\tpod\tcontainer\tnode\tcpu_seconds\tmemory_bytes\n"

// Resource groups: what an observed container is to the run.
const (
	GroupSUT    = "sut"    // the systems under test: the pods of the platforms required and of the run's releases
	GroupAgents = "agents" // the run's agents, which send and receive the load
	GroupRunner = "runner" // on local: the runner's own process, in which the twins and the load path run
)

// resourceGroups are the groups in the order figures list them.
var resourceGroups = []string{GroupSUT, GroupAgents, GroupRunner}

// ContainerRef names one observed container.
type ContainerRef struct {
	Group     string `json:"group"`
	Namespace string `json:"namespace,omitempty"`
	Pod       string `json:"pod,omitempty"`
	Container string `json:"container,omitempty"`
	Node      string `json:"node,omitempty"`
}

// ResourceSample is one reading of a container's counters.
type ResourceSample struct {
	ContainerRef
	At          time.Time // when the counters were read (the kubelet's own timestamp)
	CPUSeconds  float64   // CPU time used since the container started
	MemoryBytes float64   // working set
}

// ResourceInfo says where a run's resource figures come from, or why it
// has none.
type ResourceInfo struct {
	Source      string `json:"source"`                // what was read, e.g. the kubelet's resource metrics
	Unavailable string `json:"unavailable,omitempty"` // why no reading could be taken
	Failed      string `json:"failed,omitempty"`      // the last error of a reading that failed after others had worked
}

// ResourceFigures are one container's or one group's resource use over a
// pace step or a phase.
type ResourceFigures struct {
	ContainerRef
	CPUSeconds float64 `json:"cpu_seconds"`
	CPUCores   float64 `json:"cpu_cores"` // CPU seconds per second of the step
	// CPUPerEventUS is the CPU time per event delivered in the step (per
	// event accepted, for a send-only load), in µs; absent when none was.
	CPUPerEventUS   *float64 `json:"cpu_per_event_us,omitempty"`
	MemoryMiB       float64  `json:"memory_mib"`        // working set at the step's end
	MemoryGrowthMiB float64  `json:"memory_growth_mib"` // at the end less at the start
	Containers      int      `json:"containers,omitempty"`
	// Coverage is the share of the step the readings span; figures are
	// rates over that share.
	Coverage float64 `json:"coverage"`
}

// Resources are the resource figures of a pace step or phase: per group
// (sut, agents, or runner on local) and per container.
type Resources struct {
	Groups     []ResourceFigures `json:"groups"`
	Containers []ResourceFigures `json:"containers"`
}

// Group returns the figures of group g, nil when it has none.
func (r *Resources) Group(g string) *ResourceFigures {
	if r == nil {
		return nil
	}
	for i := range r.Groups {
		if r.Groups[i].Group == g {
			return &r.Groups[i]
		}
	}
	return nil
}

// Observed returns the figures thresholds judge: the systems under test,
// or on local, where the twins run in the runner's own process, the
// runner's.
func (r *Resources) Observed() *ResourceFigures {
	if g := r.Group(GroupSUT); g != nil {
		return g
	}
	return r.Group(GroupRunner)
}

// ResourceSecond is one group's use in one second of the timeline.
type ResourceSecond struct {
	CPUCores  *float64 `json:"cpu_cores,omitempty"`
	MemoryMiB *float64 `json:"memory_mib,omitempty"`
}

// series is one container's readings, in order of their time on the
// timeline's axis. CPU is cumulative and made monotonic: a counter that
// falls (the container restarted) goes on from where it was.
type series struct {
	t, cpu, mem []float64
	offset      float64 // added to raw CPU readings after a restart
	raw         float64 // the last raw CPU reading
}

func (s *series) add(at, cpu, mem float64) {
	if n := len(s.t); n > 0 {
		if at <= s.t[n-1] {
			return // the same reading again, or one out of order
		}
		if cpu < s.raw {
			s.offset += s.raw
		}
	}
	s.raw = cpu
	s.t, s.cpu, s.mem = append(s.t, at), append(s.cpu, cpu+s.offset), append(s.mem, mem)
}

// cpuAt is the cumulative CPU at x, linear between readings; ok when x is
// within them.
func (s *series) cpuAt(x float64) (float64, bool) {
	n := len(s.t)
	if n == 0 || x < s.t[0] || x > s.t[n-1] {
		return 0, false
	}
	i, _ := slices.BinarySearch(s.t, x)
	if s.t[i] == x || i == 0 {
		return s.cpu[i], true
	}
	f := (x - s.t[i-1]) / (s.t[i] - s.t[i-1])
	return s.cpu[i-1] + f*(s.cpu[i]-s.cpu[i-1]), true
}

// memAt is the working set of the last reading at or before x, or the
// first after it when none is before.
func (s *series) memAt(x float64) float64 {
	i, found := slices.BinarySearch(s.t, x)
	switch {
	case found:
		return s.mem[i]
	case i == 0:
		return s.mem[0]
	}
	return s.mem[i-1]
}

// over returns the CPU seconds used over [a, b] at the rate measured over
// the part of it the readings span, and that part's share of it.
func (s *series) over(a, b float64) (cpu, coverage float64) {
	n := len(s.t)
	if n < 2 || b <= a {
		return 0, 0
	}
	lo, hi := max(a, s.t[0]), min(b, s.t[n-1])
	if hi <= lo {
		return 0, 0
	}
	c0, _ := s.cpuAt(lo)
	c1, _ := s.cpuAt(hi)
	return (c1 - c0) / (hi - lo) * (b - a), (hi - lo) / (b - a)
}

// ResourceSet is a run's readings, by container. It is not safe for
// concurrent use: the Aggregator guards its own.
type ResourceSet struct {
	series map[ContainerRef]*series
	order  []ContainerRef
}

// NewResourceSet returns an empty set.
func NewResourceSet() *ResourceSet { return &ResourceSet{series: map[ContainerRef]*series{}} }

// Add adds a reading taken at second at of the timeline's axis.
func (rs *ResourceSet) Add(at float64, s ResourceSample) {
	se := rs.series[s.ContainerRef]
	if se == nil {
		se = &series{}
		rs.series[s.ContainerRef] = se
		rs.order = append(rs.order, s.ContainerRef)
	}
	se.add(at, s.CPUSeconds, s.MemoryBytes)
}

// Empty reports whether the set holds no reading.
func (rs *ResourceSet) Empty() bool { return rs == nil || len(rs.order) == 0 }

// minCoverage is the share of a step a container's readings must span for
// it to have figures for the step.
const minCoverage = 0.5

// Over returns the figures over [from, to) of the timeline's axis, with
// events the events that count for CPU per event; nil when no container
// was read over at least half of it.
func (rs *ResourceSet) Over(from, to float64, events int64) *Resources {
	if rs.Empty() || to <= from {
		return nil
	}
	out := &Resources{}
	groups := map[string]*ResourceFigures{}
	for _, c := range rs.sorted() {
		se := rs.series[c]
		cpu, coverage := se.over(from, to)
		if coverage < minCoverage {
			continue
		}
		f := ResourceFigures{ContainerRef: c, CPUSeconds: cpu, MemoryMiB: se.memAt(to) / mib, MemoryGrowthMiB: (se.memAt(to) - se.memAt(from)) / mib, Coverage: coverage}
		out.Containers = append(out.Containers, f)
		g := groups[c.Group]
		if g == nil {
			g = &ResourceFigures{ContainerRef: ContainerRef{Group: c.Group}, Coverage: coverage}
			groups[c.Group] = g
		}
		g.CPUSeconds += cpu
		g.MemoryMiB += f.MemoryMiB
		g.MemoryGrowthMiB += f.MemoryGrowthMiB
		g.Containers++
		g.Coverage = min(g.Coverage, coverage)
	}
	if len(out.Containers) == 0 {
		return nil
	}
	for _, name := range resourceGroups {
		if g := groups[name]; g != nil {
			out.Groups = append(out.Groups, *g)
		}
	}
	out.rate(to-from, events)
	return out
}

const mib = 1 << 20

// rate fills in the cores and CPU per event of every figure.
func (r *Resources) rate(seconds float64, events int64) {
	for _, list := range [][]ResourceFigures{r.Groups, r.Containers} {
		for i := range list {
			f := &list[i]
			f.CPUCores = f.CPUSeconds / seconds
			f.CPUPerEventUS = nil
			if events > 0 {
				us := f.CPUSeconds * 1e6 / float64(events)
				f.CPUPerEventUS = &us
			}
		}
	}
}

// sorted returns the containers by group, namespace, pod and name.
func (rs *ResourceSet) sorted() []ContainerRef {
	out := slices.Clone(rs.order)
	rank := func(g string) int { return slices.Index(resourceGroups, g) }
	slices.SortFunc(out, func(a, b ContainerRef) int {
		if d := rank(a.Group) - rank(b.Group); d != 0 {
			return d
		}
		return strings.Compare(a.Namespace+"/"+a.Pod+"/"+a.Container, b.Namespace+"/"+b.Pod+"/"+b.Container)
	})
	return out
}

// Second returns each group's CPU cores and working set over second s of
// the timeline; a group none of whose containers was read around it is
// absent.
func (rs *ResourceSet) Second(s int64) map[string]ResourceSecond {
	if rs.Empty() {
		return nil
	}
	a, b := float64(s), float64(s+1)
	type sum struct {
		cpu, mem     float64
		hasCPU, read bool
	}
	sums := map[string]*sum{}
	for _, c := range rs.order {
		se := rs.series[c]
		n := len(se.t)
		if n == 0 || se.t[0] > b || se.t[n-1] < a {
			continue
		}
		g := sums[c.Group]
		if g == nil {
			g = &sum{}
			sums[c.Group] = g
		}
		g.read = true
		g.mem += se.memAt(b)
		if c0, ok := se.cpuAt(a); ok {
			if c1, ok := se.cpuAt(b); ok {
				g.cpu += c1 - c0
				g.hasCPU = true
			}
		}
	}
	out := map[string]ResourceSecond{}
	for name, g := range sums {
		var rsec ResourceSecond
		if g.hasCPU {
			cpu := g.cpu
			rsec.CPUCores = &cpu
		}
		mem := g.mem / mib
		rsec.MemoryMiB = &mem
		out[name] = rsec
	}
	return out
}

// mergeResources adds up the figures of consecutive steps into those of
// their phase: CPU seconds and the events summed, memory at the last
// step's end, growth over them all.
func mergeResources(steps []*Resources, seconds float64, events int64) *Resources {
	byKey := map[ContainerRef]*ResourceFigures{}
	var order []ContainerRef
	for _, st := range steps {
		if st == nil {
			continue
		}
		for _, list := range [][]ResourceFigures{st.Groups, st.Containers} {
			for _, f := range list {
				m := byKey[f.ContainerRef]
				if m == nil {
					c := f
					c.MemoryGrowthMiB, c.CPUSeconds, c.Coverage = 0, 0, 0
					m = &c
					byKey[f.ContainerRef] = m
					order = append(order, f.ContainerRef)
				}
				m.CPUSeconds += f.CPUSeconds
				m.MemoryMiB = f.MemoryMiB
				m.MemoryGrowthMiB += f.MemoryGrowthMiB
				m.Containers = max(m.Containers, f.Containers)
				m.Coverage += f.Coverage / float64(len(steps))
			}
		}
	}
	if len(order) == 0 {
		return nil
	}
	out := &Resources{}
	for _, c := range order {
		if c.Pod == "" && c.Namespace == "" && c.Container == "" {
			out.Groups = append(out.Groups, *byKey[c])
		} else {
			out.Containers = append(out.Containers, *byKey[c])
		}
	}
	out.rate(seconds, events)
	return out
}

// resourceWriter appends readings to ResourcesFile.
type resourceWriter struct {
	f *os.File
}

func createResources(dir string) (*resourceWriter, error) {
	f, err := os.OpenFile(filepath.Join(dir, ResourcesFile), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", ResourcesFile, err)
	}
	if _, err := f.WriteString(resourcesHeader); err != nil {
		f.Close()
		return nil, fmt.Errorf("write %s: %w", ResourcesFile, err)
	}
	return &resourceWriter{f: f}, nil
}

// write appends readings, each at its second on the timeline's axis.
func (w *resourceWriter) write(at []float64, samples []ResourceSample) error {
	var b strings.Builder
	for i, s := range samples {
		fmt.Fprintf(&b, "%.3f\t%d\t%s\t%s\t%s\t%s\t%s\t%.9f\t%.0f\n", at[i], s.At.UnixMilli(),
			field(s.Group), field(s.Namespace), field(s.Pod), field(s.Container), field(s.Node), s.CPUSeconds, s.MemoryBytes)
	}
	if _, err := w.f.WriteString(b.String()); err != nil {
		return fmt.Errorf("write %s: %w", ResourcesFile, err)
	}
	return nil
}

// field is a name as a TSV field: "-" when empty, tabs and newlines never.
func field(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

func unfield(s string) string {
	if s == "-" {
		return ""
	}
	return s
}

// ReadResources reads a run directory's ResourcesFile; an empty set when
// the run has none.
func ReadResources(dir string) (*ResourceSet, error) {
	rs := NewResourceSet()
	f, err := os.Open(filepath.Join(dir, ResourcesFile))
	if errors.Is(err, fs.ErrNotExist) {
		return rs, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		if line == 1 {
			continue
		}
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) != 9 {
			// A line cut by a kill ends the file.
			break
		}
		at, err1 := strconv.ParseFloat(cols[0], 64)
		cpu, err2 := strconv.ParseFloat(cols[7], 64)
		mem, err3 := strconv.ParseFloat(cols[8], 64)
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", filepath.Join(dir, ResourcesFile), line, err)
		}
		ms, _ := strconv.ParseInt(cols[1], 10, 64)
		rs.Add(at, ResourceSample{
			ContainerRef: ContainerRef{Group: unfield(cols[2]), Namespace: unfield(cols[3]), Pod: unfield(cols[4]), Container: unfield(cols[5]), Node: unfield(cols[6])},
			At:           time.UnixMilli(ms), CPUSeconds: cpu, MemoryBytes: mem,
		})
	}
	return rs, sc.Err()
}

// formatResource writes a per-second figure for timeline.tsv: NaN when it
// was not measured, which gnuplot leaves out.
func formatResource(v *float64) string {
	if v == nil || math.IsNaN(*v) {
		return "NaN"
	}
	return strconv.FormatFloat(*v, 'f', 3, 64)
}

// ResourceReader reads the observed containers' counters, once per call.
type ResourceReader interface {
	Read(ctx context.Context) ([]ResourceSample, error)
	// Info says what is read.
	Info() ResourceInfo
}

// Notable returns the figures to show a person: every group, then the
// containers that used at least minShare of their group's CPU, busiest
// first, at most perGroup of each group (none for a group of one).
func (r *Resources) Notable(minShare float64, perGroup int) []ResourceFigures {
	if r == nil {
		return nil
	}
	out := slices.Clone(r.Groups)
	for _, g := range r.Groups {
		if g.Containers == 1 {
			continue // the group says it all
		}
		var list []ResourceFigures
		for _, c := range r.Containers {
			if c.Group == g.Group && (g.CPUSeconds == 0 || c.CPUSeconds >= minShare*g.CPUSeconds) {
				list = append(list, c)
			}
		}
		slices.SortStableFunc(list, func(a, b ResourceFigures) int { return cmpDesc(a.CPUSeconds, b.CPUSeconds) })
		if len(list) > perGroup {
			list = list[:perGroup]
		}
		out = append(out, list...)
	}
	return out
}

func cmpDesc(a, b float64) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}

// Label names a figure's group or container for a person.
func (f ResourceFigures) Label() string {
	if f.Pod == "" && f.Namespace == "" {
		name := map[string]string{GroupSUT: "systems under test", GroupAgents: "agents", GroupRunner: "runner process (twins and load)"}[f.Group]
		if name == "" {
			name = f.Group
		}
		if f.Containers > 1 {
			name += fmt.Sprintf(" (%d containers)", f.Containers)
		}
		return name
	}
	if f.Namespace == "" {
		return f.Pod + "/" + f.Container
	}
	return f.Namespace + "/" + f.Pod + "/" + f.Container
}

// FormatPerEvent writes CPU per event in µs with one decimal, or "—" when
// no event counted.
func (f ResourceFigures) FormatPerEvent() string {
	if f.CPUPerEventUS == nil {
		return "—"
	}
	return strconv.FormatFloat(*f.CPUPerEventUS, 'f', 1, 64)
}
