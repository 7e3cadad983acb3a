package scenario

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestTemplatesAreBounded(t *testing.T) {
	old := renderTimeout
	t.Cleanup(func() { renderTimeout = old })
	for name, tt := range map[string]struct {
		tmpl, want string
		timeout    time.Duration
	}{
		"output":    {"{{ range .Vars.n }}{{ range $.Vars.n }}xxxxxxxxxx{{ end }}{{ end }}", `s.yaml:4:28: step "measure[0]" (exec): template: the scenario's templates render more than 4 MiB`, time.Minute},
		"no output": {"{{ range .Vars.n }}{{ range $.Vars.n }}{{ end }}{{ end }}", `s.yaml:4:28: step "measure[0]" (exec): template: the scenario's templates did not finish within 300ms (a range over a large number?)`, 300 * time.Millisecond},
	} {
		t.Run(name, func(t *testing.T) {
			renderTimeout = tt.timeout
			src := fmt.Sprintf("name: t\nvars: {n: 100000}\nmeasure:\n  - exec: {command: [echo, '%s']}\n", tt.tmpl)
			got := decodeErrors(t, src, Options{})
			if len(got) != 1 || got[0] != tt.want {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestAliasesCannotExpandWithoutBound(t *testing.T) {
	src := "name: a\nvars:\n  a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	for i := 'b'; i <= 'h'; i++ {
		p := string(i - 1)
		src += fmt.Sprintf("  %c: &%c [*%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s]\n", i, i, p, p, p, p, p, p, p, p, p, p)
	}
	src += "measure:\n  - sleep: {duration: 1s}\n"
	got := decodeErrors(t, src, Options{})
	if len(got) != 1 || !strings.Contains(got[0], "aliases expand the document to more than 100") {
		t.Errorf("got %q", got)
	}
}

// TestLargeFileOfStepsIsNotMistakenForAliases decodes many steps, more
// nodes than aliases may add: the budget counts what is written.
func TestLargeFileOfStepsIsNotMistakenForAliases(t *testing.T) {
	var b strings.Builder
	b.WriteString("name: big\nmeasure:\n")
	for i := range 30000 {
		fmt.Fprintf(&b, "  - name: step-%d\n    sleep: {duration: 1ms}\n    timeout: 10s\n", i)
	}
	sc, err := Decode("s.yaml", []byte(b.String()), Options{})
	if err != nil {
		t.Fatalf("%.300v", err)
	}
	if n := len(sc.Steps[Measure]); n != 30000 {
		t.Errorf("%d steps", n)
	}
}

func TestDiagnosticsListTheFirstFifty(t *testing.T) {
	var b strings.Builder
	b.WriteString("name: bad\nmeasure:\n")
	for range 80 {
		b.WriteString("  - slep: {}\n")
	}
	got := decodeErrors(t, b.String(), Options{})
	if len(got) != 51 || got[50] != "… and 30 more problems" {
		t.Errorf("%d lines, last %q", len(got), got[len(got)-1])
	}
}

// BenchmarkDecodeSize decodes a mapping-heavy scenario at a quarter of the
// input bound and at the bound: ns/B stays the same when decoding is linear
// in the file's size.
func BenchmarkDecodeSize(b *testing.B) {
	for _, keys := range []int{55_000, 220_000} {
		var src strings.Builder
		src.WriteString("name: big\nvars:\n")
		for i := range keys {
			fmt.Fprintf(&src, "  k%d: %d\n", i, i)
		}
		b.Run(fmt.Sprintf("%dKiB", src.Len()>>10), func(b *testing.B) {
			for b.Loop() {
				if _, err := Decode("s.yaml", []byte(src.String()), Options{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(src.Len()), "ns/B")
		})
	}
}
