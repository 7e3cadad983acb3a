package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/perfrunner/runner/engine"
	"github.com/perfrunner/runner/pace"
	"github.com/perfrunner/runner/report"
	"github.com/perfrunner/runner/results"
)

func newPlotCommand(stdout io.Writer) *cobra.Command {
	var format, window string
	var skip time.Duration
	cmd := &cobra.Command{
		Use: "plot RUN_DIR",
		Example: `  runner plot results/direct/smoke/20261201T101500Z-1a2b3c
  runner plot RUN_DIR --skip 30         # leave out the measure phase's first 30 s
  runner plot RUN_DIR --window 30:90 --format svg`,
		Short: "Render a stored run's graphs again, optionally over a window of the measure phase",
		Long: `Render a stored run's graphs again.

With --skip or --window, the measured figures are recomputed from the run's
per-second digests over that part of the measure phase only (counted from its
first pace step), and written with their graphs and report into
RUN_DIR/skip-<D>/ or RUN_DIR/window-<A>-<B>/: the "sanitized" figures of a
run whose first seconds carry a cold start, without editing any data.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			if format != "png" && format != "svg" {
				return badInput(fmt.Errorf("--format %q: must be png or svg", format))
			}
			w, err := plotWindow(skip, window)
			if err != nil {
				return badInput(err)
			}
			sum, err := readRunSummary(dir)
			if errors.Is(err, errMeasuredNothing) {
				return &exitError{code: exitFailed, err: err}
			} else if err != nil {
				return badInput(err)
			}
			out := dir
			if w != nil {
				out = filepath.Join(dir, w.Label())
				if sum, err = results.Windowed(dir, out, *w); err != nil {
					return &exitError{code: exitFailed, err: err}
				}
			}
			if why := report.NothingToDraw(sum); why != "" {
				return &exitError{code: exitFailed, err: fmt.Errorf("nothing to draw in %s: %s", out, why)}
			}
			if err := report.WritePlots(out, sum); err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			images, err := report.Render(out, format)
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			rep := report.Report{Summary: sum, Images: images}
			if rec, err := engine.ReadRunRecord(dir); err == nil && rec.Context != nil {
				rep.Context = rec.Context
				rep.Context.Vars = rec.Vars
				if w == nil {
					rep.Ending = rec.Ending // a window's verdicts are its own
				}
			}
			if err := report.WriteReport(out, rep); err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			for _, p := range sum.Paces {
				line := fmt.Sprintf("  %8g/s  sent %9.1f/s  delivered %9.1f/s  publish p99.99 %9.3f ms  e2e p99.99 %9s ms  %s", p.TargetRPS, p.AchievedSendRPS, p.DeliveredRPS, p.PublishMS.P9999, results.FormatMS(p.E2E(results.P9999)), p.Verdict)
				if p.Reason != "" {
					line += ": " + p.Reason
				}
				fmt.Fprintln(stdout, line)
			}
			fmt.Fprintf(stdout, "sustained %g events/s; %s in %s\n", sum.SustainedRPS, strings.Join(images, ", "), out)
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "png", "png or svg")
	durationVar(cmd.Flags(), &skip, "skip", 0, "leave out the first D of the measure phase")
	cmd.Flags().StringVar(&window, "window", "", "keep only FROM:TO of the measure phase, e.g. 30s:90s")
	return cmd
}

// plotWindow turns --skip and --window into a window, or nil for the whole run.
func plotWindow(skip time.Duration, window string) (*results.Window, error) {
	switch {
	case skip != 0 && window != "":
		return nil, errors.New("give --skip or --window, not both")
	case skip < 0:
		return nil, fmt.Errorf("--skip %s: must be positive", skip)
	case skip > 0:
		return &results.Window{From: skip.Seconds()}, nil
	case window == "":
		return nil, nil
	}
	fromText, toText, ok := strings.Cut(window, ":")
	from, err1 := pace.ParseDuration(fromText)
	to, err2 := pace.ParseDuration(toText)
	if !ok || err1 != nil || err2 != nil || from < 0 || to <= from {
		return nil, fmt.Errorf("--window %q: want FROM:TO in seconds or durations, FROM < TO (e.g. 30:90 or 30s:90s)", window)
	}
	return &results.Window{From: from.Seconds(), To: to.Seconds()}, nil
}

// errMeasuredNothing is a run directory without results: its run measured
// nothing.
var errMeasuredNothing = errors.New("measured nothing")

// readRunSummary reads the results of the run in dir; a run that measured
// nothing is errMeasuredNothing, with how it ended.
func readRunSummary(dir string) (results.Summary, error) {
	sum, err := results.ReadSummary(dir)
	if err == nil {
		return sum, nil
	}
	rec, rerr := engine.ReadRunRecord(dir)
	if !errors.Is(err, fs.ErrNotExist) || rerr != nil {
		return sum, fmt.Errorf("%s is not a run directory with results: %w", dir, err)
	}
	why := "its run " + rec.Status
	if rec.Ending != nil && len(rec.Ending.Errors) > 0 {
		why += ": " + rec.Ending.Errors[0]
	}
	return sum, fmt.Errorf("%s %w (%s)", dir, errMeasuredNothing, why)
}
