package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/perfrunner/runner/engine"
	"github.com/perfrunner/runner/report"
	"github.com/perfrunner/runner/results"
)

func newCompareCommand(stdout io.Writer) *cobra.Command {
	var tolerance, format, out string
	cmd := &cobra.Command{
		Use: "compare RUN_DIR RUN_DIR...",
		Example: `  runner compare results/channel-imc/1k-2k/20261201T101500Z-1a2b3c results/channel-imc/1k-2k/20261202T101500Z-4d5e6f
  runner compare RUN_A RUN_B --tolerance 5% --format md > comparison.md`,
		Short: "Compare runs pace step by pace step against the first, with a verdict against a tolerance",
		Long: `Compare runs pace step by pace step: sent and delivered rates, p50, p99 and
p99.99 publish and end-to-end latency, failures and losses, with each run's
changes against the first and a verdict (same, better, worse) against
--tolerance. An overlay graph of the per-step latencies is written to --out.
Exits 3 when a run is worse than the first.`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			tol, err := parseTolerance(tolerance)
			if err != nil {
				return badInput(err)
			}
			if format != "table" && format != "md" && format != "json" {
				return badInput(fmt.Errorf("--format %q: must be table, md or json", format))
			}
			sums := make([]results.Summary, len(args))
			for i, dir := range args {
				if sums[i], err = readRunSummary(dir); err != nil {
					return badInput(err)
				}
			}
			c := results.Compare(args, sums, tol)
			if format == "json" {
				err = c.WriteJSON(stdout)
			} else {
				err = c.WriteTable(stdout, format == "md")
			}
			if err != nil {
				return err
			}
			if out == "" {
				out = filepath.Join("results", "compare", time.Now().UTC().Format("20060102T150405Z"))
			}
			sets := make([][]string, len(args))
			for i, dir := range args {
				if rec, err := engine.ReadRunRecord(dir); err == nil && rec.Context != nil {
					sets[i] = rec.Context.Sets
				}
			}
			if err := report.WriteComparison(out, c, report.RunLabels(args, sums, sets)); err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			if images, err := report.RenderScripts(out, "png", "compare.gp"); err == nil && format != "json" {
				fmt.Fprintf(stdout, "graph: %s\n", filepath.Join(out, images[0]))
			} else if err != nil && format != "json" {
				fmt.Fprintf(stdout, "graph script in %s (%v)\n", out, err)
			}
			switch c.Verdict {
			case "worse":
				return &exitError{code: exitThreshold, err: fmt.Errorf("a run is worse than %s beyond the %s tolerance", args[0], tolerance)}
			case "mismatch":
				return badInput(fmt.Errorf("the runs' pace steps differ in target rate: compare runs of the same pace set"))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&tolerance, "tolerance", "10%", "relative change allowed before a figure counts as better or worse")
	cmd.Flags().StringVar(&format, "format", "table", "table, md or json")
	cmd.Flags().StringVar(&out, "out", "", "where the overlay graph goes (default results/compare/<time>)")
	return cmd
}

func parseTolerance(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("--tolerance %q: want a percentage such as 10%%", s)
	}
	if strings.HasSuffix(s, "%") {
		v /= 100
	}
	return v, nil
}
