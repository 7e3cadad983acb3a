package engine

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/perfrunner/runner/internal/atomicfile"
	"github.com/perfrunner/runner/internal/flock"
	"github.com/perfrunner/runner/pace"
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
	Status        string         `json:"status"` // running, succeeded, failed, interrupted
	Steps         []StepRecord   `json:"steps"`
	Undone        []UndoRecord   `json:"undone,omitempty"`
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
