package results

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestTornDigestsKeepEveryEarlierWrite cuts the per-second digests in the
// middle of the last Write, as a kill would: every second of the Writes
// before it reads back.
func TestTornDigestsKeepEveryEarlierWrite(t *testing.T) {
	dir := t.TempDir()
	tl, err := CreateTimeline(dir)
	if err != nil {
		t.Fatal(err)
	}
	second := func(s int64) Second {
		b := newBucket()
		b.Intended = 100 + s
		b.digests[E2E].Add(float64(s))
		return Second{Second: s, Start: time.Unix(1_800_000_000+s, 0), Phase: "measure", b: b}
	}
	path := filepath.Join(dir, SecondsFile)
	var sizeBefore int64
	for s := range int64(4) {
		if s == 3 {
			info, _ := os.Stat(path)
			sizeBefore = info.Size()
		}
		if err := tl.Write([]Second{second(s)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tl.Close(); err != nil {
		t.Fatal(err)
	}
	info, _ := os.Stat(path)
	if err := os.Truncate(path, sizeBefore+(info.Size()-sizeBefore)/2); err != nil {
		t.Fatal(err)
	}
	lines, err := readSeconds(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 3 {
		t.Fatalf("%d seconds read back, want the 3 written before the torn one", len(lines))
	}
	for i, line := range lines {
		if line.Second != int64(i) || line.Counts.Intended != 100+int64(i) || line.Digests["e2e"].Quantile(1) != float64(i) {
			t.Errorf("second %d read back as %+v", i, line)
		}
	}
}
