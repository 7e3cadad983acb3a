package report

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/perfrunner/runner/results"
)

// ReportFile is the run's markdown report.
const ReportFile = "report.md"

// Report is what report.md tells of a run.
type Report struct {
	Summary results.Summary
	Images  []string            // the rendered graphs, in the run directory
	Context *results.RunContext // how the run was produced; nil when unknown
	Ending  *Ending             // how it ended; nil while it runs
}

// WriteReport writes report.md: the verdict, the per-step table, the
// rendered graphs and how the run was produced, readable on a
// code-hosting site.
func WriteReport(dir string, r Report) error {
	sum := r.Summary
	var b strings.Builder
	fmt.Fprintf(&b, "# %s · %s\n\n", sum.Scenario, sum.PaceSet)
	fmt.Fprintf(&b, "Target `%s`.\n\n", sum.Target)
	writeClosing(&b, sum, r.Ending)
	b.WriteString("## Pace steps\n\n")
	if measuredNothing(&sum) {
		b.WriteString("No pace step was measured.\n")
		writeContext(&b, r.Context)
		return os.WriteFile(filepath.Join(dir, ReportFile), []byte(b.String()), 0o600)
	}
	t := sum.Totals
	if sum.AllSendOnly() {
		fmt.Fprintf(&b, "Measured: %d intended, %d sent, %d accepted, %d dropped, %d send failures; deliveries not measured (send-only).\n\n",
			t.Intended, t.Sent, t.Accepted, t.Dropped, t.SendFailures)
	} else {
		fmt.Fprintf(&b, "Measured: %d intended, %d sent, %d accepted, %d delivered, %d lost, %d duplicates, %d dropped, %d send failures.\n\n",
			t.Intended, t.Sent, t.Accepted, t.Delivered, t.Lost, t.Duplicates, t.Dropped, t.SendFailures)
	}
	b.WriteString("| phase | target/s | sent/s | delivered/s | failed | dropped | lost | publish p50 | p99 | p99.99 | e2e p50 | p99 | p99.99 | verdict |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
	for _, s := range append(warmupPaces(sum), sum.Paces...) {
		verdict := StepVerdict(s)
		delivered, lost := fmt.Sprintf("%.1f", s.DeliveredRPS), fmt.Sprint(s.Lost)
		if s.SendOnly {
			delivered, lost = "—", "—"
		}
		fmt.Fprintf(&b, "| %s | %g | %.1f | %s | %d | %d | %s | %.3f | %.3f | %.3f | %s | %s | %s | %s |\n",
			s.Phase, s.TargetRPS, s.AchievedSendRPS, delivered, s.SendFailures, s.Dropped, lost,
			s.PublishMS.P50, s.PublishMS.P99, s.PublishMS.P9999,
			results.FormatMS(s.E2E(results.P50)), results.FormatMS(s.E2E(results.P99)), results.FormatMS(s.E2E(results.P9999)), verdict)
	}
	b.WriteString("\nLatencies in milliseconds, measured from each event's intended send time.\n")
	if sendOnly(sum) {
		b.WriteString("\nSend-only: the sink does not deliver to the run's receivers, so deliveries, losses and end-to-end latencies were not measured (—); publish latency is the time to the sink's HTTP answer.\n")
	}
	writeResources(&b, sum)
	writeProfiles(&b, dir)
	for _, img := range r.Images {
		fmt.Fprintf(&b, "\n![%s](%s)\n", strings.TrimSuffix(img, filepath.Ext(img)), img)
	}
	writeContext(&b, r.Context)
	return os.WriteFile(filepath.Join(dir, ReportFile), []byte(b.String()), 0o600)
}

// sendOnly reports whether a step of the run was send-only.
func sendOnly(sum results.Summary) bool {
	for _, s := range append(warmupPaces(sum), sum.Paces...) {
		if s.SendOnly {
			return true
		}
	}
	return false
}

// writeResources writes the resource use of the observed systems per pace
// step: every group, and the containers that used at least 5 % of their
// group's CPU.
func writeResources(b *strings.Builder, sum results.Summary) {
	info := sum.Resources
	if info == nil {
		return
	}
	b.WriteString("\n## Resource use\n\n")
	if info.Unavailable != "" {
		fmt.Fprintf(b, "Not measured: %s.\n", info.Unavailable)
		return
	}
	fmt.Fprintf(b, "From %s.\n\n", info.Source)
	b.WriteString("| phase | target/s | what | CPU cores | CPU/event µs | memory MiB | growth MiB |\n")
	b.WriteString("| --- | ---: | --- | ---: | ---: | ---: | ---: |\n")
	for _, s := range append(warmupPaces(sum), sum.Paces...) {
		for _, f := range s.Resources.Notable(0.05, 5) {
			label := f.Label()
			if f.Pod == "" {
				label = "**" + label + "**"
			}
			fmt.Fprintf(b, "| %s | %g | %s | %.3f | %s | %.1f | %+.1f |\n", s.Phase, s.TargetRPS, label, f.CPUCores, f.FormatPerEvent(), f.MemoryMiB, f.MemoryGrowthMiB)
		}
	}
	b.WriteString("\nCPU per event is the CPU time over the step divided by the events delivered in it (accepted, for a send-only load); memory is the working set at the step's end, growth its change over the step.\n")
	if info.Failed != "" {
		fmt.Fprintf(b, "\nA reading failed during the run: %s.\n", info.Failed)
	}
}

// writeProfiles lists the profiles the run took, with the command that
// opens each.
func writeProfiles(b *strings.Builder, dir string) {
	files, _ := filepath.Glob(filepath.Join(dir, "profiles", "*.pprof"))
	if len(files) == 0 {
		return
	}
	b.WriteString("\n## Profiles\n\n")
	for _, f := range files {
		rel, _ := filepath.Rel(dir, f)
		fmt.Fprintf(b, "- [%s](%s): `go tool pprof -http=: %s`\n", filepath.Base(f), rel, rel)
	}
	b.WriteString("\nNamed pod.container.step.kind (on local, runner.step.kind); the commands open them from the run directory.\n")
}

// writeContext writes how the run was produced: the command line, the
// variables with their overrides, the tags and the environment.
func writeContext(b *strings.Builder, c *results.RunContext) {
	if c == nil {
		return
	}
	b.WriteString("\n## How it ran\n\n")
	if len(c.Command) > 0 {
		fmt.Fprintf(b, "- Command: `%s`\n", shellQuote(c.Command))
	}
	if len(c.Vars) > 0 {
		fmt.Fprintf(b, "- Variables: %s\n", keyValues(c.Vars))
	}
	if len(c.Sets) > 0 {
		fmt.Fprintf(b, "- Overridden with --set: `%s`\n", strings.Join(c.Sets, "`, `"))
	}
	if c.WarmupPace != "" {
		fmt.Fprintf(b, "- Warmups at `%s` (--pace-override), not at the pace their variables give\n", c.WarmupPace)
	}
	if len(c.ValuesFiles) > 0 {
		fmt.Fprintf(b, "- Values files: `%s`\n", strings.Join(c.ValuesFiles, "`, `"))
	}
	if len(c.Tags) > 0 {
		fmt.Fprintf(b, "- Tags: %s\n", keyValues(c.Tags))
	}
	fmt.Fprintf(b, "- Environment: %s\n", c.Environment)
}

// keyValues writes m as `key=value` pairs in the order of their keys.
func keyValues[V any](m map[string]V) string {
	keys := slices.Sorted(maps.Keys(m))
	pairs := make([]string, len(keys))
	for i, k := range keys {
		pairs[i] = fmt.Sprintf("`%s=%v`", k, m[k])
	}
	return strings.Join(pairs, ", ")
}

// shellQuote writes args as a shell command line: an argument with a
// character a shell would read is single-quoted.
func shellQuote(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=,@%+", r))
		}) < 0 {
			out[i] = a
			continue
		}
		out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(out, " ")
}
