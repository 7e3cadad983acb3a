package engine

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hashicorp/go-multierror"
	"github.com/perfrunner/runner/internal/atomicfile"
	"github.com/perfrunner/runner/internal/flock"
	"github.com/perfrunner/runner/pace"
	"github.com/perfrunner/runner/report"
	"github.com/perfrunner/runner/results"
	"github.com/perfrunner/runner/steps"
	"github.com/perfrunner/runner/target"
)

// Files in a run directory.
const (
	RunFile      = "run.json"
	ScenarioFile = "scenario.yaml"
	LogFile      = "runner.log"
	lockFile     = "run.lock"
)

// RunRecord is run.json: what ran, where, and how each step went. It is
// rewritten after every step, so a crash leaves it current.
type RunRecord struct {
	Schema        string         `json:"schema"`
	RunnerVersion string         `json:"runner_version"`
	Scenario      string         `json:"scenario"`
	File          string         `json:"file"`
	PaceSet       string         `json:"pace_set"`
	Pace          pace.Pace      `json:"pace"`
	Vars          map[string]any `json:"vars,omitempty"` // the scenario's variables, overrides applied
	Target        string         `json:"target"`
	RunID         string         `json:"run_id"`            // on kubernetes, the value of the label every object of the run carries
	Cluster       *ClusterRecord `json:"cluster,omitempty"` // on kubernetes
	Host          string         `json:"host"`
	PID           int            `json:"pid"`
	Start         time.Time      `json:"start"`
	End           *time.Time     `json:"end,omitempty"`
	Status        string         `json:"status"`           // running, succeeded, failed, interrupted, thresholds-breached, steps-broken, killed
	Reason        string         `json:"reason,omitempty"` // why it failed, when one cause explains it: "disk full"
	// Ending is the exit code runner exec returned and what it meant;
	// nil while the run runs, or when it was killed.
	Ending *report.Ending `json:"ending,omitempty"`
	// Context is how the run was produced: the command line, --set and
	// values files, tags and the environment's fingerprint.
	Context *results.RunContext `json:"context,omitempty"`
	Steps   []StepRecord        `json:"steps"`
	Undone  []UndoRecord        `json:"undone,omitempty"`
	// Agents are the agent pods the run drove, with the image each ran.
	Agents []steps.AgentRecord `json:"agents,omitempty"`
	// Requires is what the scenario required of the cluster (in a
	// platform's install, what it provides), as checked.
	Requires []CheckRecord `json:"requires,omitempty"`
	// Charts are the releases the run installed: each chart's origin,
	// version and digest, and a digest of its values.
	Charts []steps.ChartRecord `json:"charts,omitempty"`
	// SUT are the pods of the systems under test as setup left them: the
	// platforms' namespaces and the run's, each container's image by
	// digest and the node it ran on.
	SUT []target.PodRecord `json:"sut,omitempty"`
	// Restarted are the Deployments restarted before setup (a matrix's
	// restart:).
	Restarted []string `json:"restarted,omitempty"`
}

// ClusterRecord names the cluster of a run on kubernetes: never
// credentials.
type ClusterRecord = target.Location

// StepRecord is the outcome of one step.
type StepRecord struct {
	Phase      string    `json:"phase"`
	Name       string    `json:"name"`
	Kind       string    `json:"kind"`
	Pos        string    `json:"pos"`
	Status     string    `json:"status"` // succeeded, failed, timed-out, cancelled, skipped
	Reason     string    `json:"reason,omitempty"`
	Attempts   int       `json:"attempts"`
	Start      time.Time `json:"start"`
	DurationMS float64   `json:"duration_ms"`
	Error      string    `json:"error,omitempty"`
}

// UndoRecord is the outcome of undoing one journaled resource.
type UndoRecord struct {
	Resource string `json:"resource"`
	Status   string `json:"status"` // undone, failed
	Error    string `json:"error,omitempty"`
}

// runDirName returns results/<scenario>/<pace-set>/<UTC time>-<short id>.
func runDirName(root, scenario, paceSet string, now time.Time) string {
	var id [3]byte
	_, _ = rand.Read(id[:])
	return filepath.Join(root, scenario, paceSet, now.UTC().Format("20060102T150405Z")+"-"+hex.EncodeToString(id[:]))
}

func writeJSON(path string, v any) error { return atomicfile.WriteJSON(path, v) }

// ReadRunRecord reads run.json from a run directory.
func ReadRunRecord(dir string) (*RunRecord, error) {
	data, err := os.ReadFile(filepath.Join(dir, RunFile))
	if err != nil {
		return nil, fmt.Errorf("read run record: %w", err)
	}
	var rec RunRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("read run record %s: %w", filepath.Join(dir, RunFile), err)
	}
	return &rec, nil
}

// ReserveFile holds space in a run directory while the run measures, so
// that a disk filled meanwhile still has room for the run's record, its
// summary and the journal of its teardown.
const ReserveFile = "disk-reserve"

const reserveBytes = 1 << 20

// reserveSpace writes ReserveFile; a directory that cannot hold it is
// refused before anything runs.
func reserveSpace(dir string) error {
	path := filepath.Join(dir, ReserveFile)
	err := os.WriteFile(path, make([]byte, reserveBytes), 0o600)
	if err == nil {
		f, openErr := os.Open(path)
		if openErr == nil {
			err = f.Sync()
			f.Close()
		}
	}
	if err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("reserve %d MiB for the run's record in %s: %w", reserveBytes>>20, dir, err)
	}
	return nil
}

// releaseSpace removes ReserveFile, if it is there.
func releaseSpace(dir string) { _ = os.Remove(filepath.Join(dir, ReserveFile)) }

// diskFull reports whether err is, or holds, a write that found no space.
func diskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// collapseDiskFull replaces the errors a full disk caused, one for every
// file that could not be written, by one that says so.
func collapseDiskFull(errs *multierror.Error, dir string) *multierror.Error {
	if errs == nil || !diskFull(errs) {
		return errs
	}
	var out *multierror.Error
	var first error
	for _, err := range errs.Errors {
		if diskFull(err) {
			if first == nil {
				first = err
			}
			continue
		}
		out = multierror.Append(out, err)
	}
	if first == nil { // held deeper than the list's own errors
		first = errs
	}
	return multierror.Append(out, fmt.Errorf("disk full: the results in %s could not all be written; the first write that failed: %w", dir, first))
}

// lockRunDir takes an exclusive lock on the run directory, held until the
// file is closed or the process dies, so that `runner cleanup` cannot race a
// run that is still alive.
func lockRunDir(dir string) (*os.File, error) {
	f, err := flock.Try(filepath.Join(dir, lockFile), 0o600)
	if errors.Is(err, flock.ErrHeld) {
		return nil, fmt.Errorf("%s is in use by a running runner", dir)
	}
	return f, err
}
