package results

import (
	"bytes"
	"strings"
	"testing"

	"github.com/perfrunner/runner/internal/golden"
)

func fixture(p99 float64, lost int64, targets ...float64) Summary {
	s := Summary{Scenario: "fixture"}
	for _, t := range targets {
		st := step(t, t)
		st.AchievedSendRPS = t
		st.PublishMS = Quantiles{P50: 1, P99: p99, P9999: 2 * p99}
		st.E2EMS = Quantiles{P50: 1.5, P99: p99 + 1, P9999: 2*p99 + 1, Count: 1000}
		st.Lost = lost
		s.Paces = append(s.Paces, st)
	}
	return s
}

func TestCompare(t *testing.T) {
	base := fixture(10, 0, 1000, 2000)
	same := fixture(10.5, 0, 1000, 2000)
	slower := fixture(13, 0, 1000, 2000)
	lossy := fixture(9, 4, 1000)
	c := Compare([]string{"a", "b", "c", "d"}, []Summary{base, same, slower, lossy}, 0.1)
	if c.Verdict != "worse" || len(c.Steps) != 2 {
		t.Fatalf("verdict %s, steps %d", c.Verdict, len(c.Steps))
	}
	got := []string{}
	for _, f := range c.Steps[0].Runs {
		got = append(got, f.Verdict)
	}
	if strings.Join(got, " ") != "base same worse worse" {
		t.Errorf("step 1 verdicts: %v", got)
	}
	if d := c.Steps[0].Runs[2].Delta["publish_p99"]; d < 0.299 || d > 0.301 {
		t.Errorf("publish p99 delta %g, want 0.3", d)
	}
	if w := strings.Join(c.Steps[0].Runs[3].Why, ", "); w != "lost 0 → 4" {
		t.Errorf("why: %q", w)
	}
	if c.Steps[1].Runs[3] != nil {
		t.Error("a run without the step got figures for it")
	}
	if c := Compare([]string{"a", "b"}, []Summary{base, fixture(8, 0, 1000, 2000)}, 0.1); c.Verdict != "better" {
		t.Errorf("a faster run: %s", c.Verdict)
	}
	if c := Compare([]string{"a", "b"}, []Summary{base, fixture(10, 0, 1000, 1500)}, 0.1); c.Verdict != "mismatch" || c.Steps[1].TargetRPS != 2000 {
		t.Errorf("different pace sets: %s, step 2 target %g", c.Verdict, c.Steps[1].TargetRPS)
	}
	dropping := fixture(10, 0, 1000, 2000)
	dropping.Paces[0].Dropped, dropping.Paces[0].Verdict = 80, "broken"
	if c := Compare([]string{"a", "b"}, []Summary{base, dropping}, 0.1); c.Verdict != "worse" || strings.Join(c.Steps[0].Runs[1].Why, ", ") != "dropped 0 → 80, the step broke" {
		t.Errorf("a run that drops: %s %v", c.Verdict, c.Steps[0].Runs[1].Why)
	}
	// A regression in cost is caught like one in latency.
	costs := func(us float64) Summary {
		s := fixture(10, 0, 1000)
		s.Paces[0].Resources = &Resources{Groups: []ResourceFigures{{ContainerRef: ContainerRef{Group: GroupSUT}, CPUPerEventUS: &us}}}
		return s
	}
	c = Compare([]string{"a", "b", "c"}, []Summary{costs(180), costs(190), costs(252)}, 0.1)
	if c.Verdict != "worse" || c.Steps[0].Runs[1].Verdict != "same" || strings.Join(c.Steps[0].Runs[2].Why, ", ") != "cpu_per_event_us +40.0%" {
		t.Errorf("a costlier run: %s, %s, why %v", c.Verdict, c.Steps[0].Runs[1].Verdict, c.Steps[0].Runs[2].Why)
	}
	var costTable bytes.Buffer
	if err := c.WriteTable(&costTable, false); err != nil || !strings.Contains(costTable.String(), "252.0 (+40%)") {
		t.Errorf("table (%v):\n%s", err, costTable.String())
	}

	var table, md bytes.Buffer
	if err := c.WriteTable(&table, false); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteTable(&md, true); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "compare.txt", table.Bytes())
	golden.Check(t, "compare.md", md.Bytes())
}
