package steps

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"time"

	"github.com/perfrunner/runner/target"
)

// Spec is the typed spec of one step, decoded from its kind key's value.
// Implementations are pointers to structs whose fields carry `yaml` tags.
type Spec interface {
	// Run does the step's work. It must return promptly once ctx is done.
	Run(ctx context.Context, env *Env) error
}

// Validator is implemented by specs that check more than their field types.
// Each FieldError names the field (by its yaml key) it is about.
type Validator interface {
	Validate() []FieldError
}

// Creator is implemented by specs whose Run creates something that must be
// undone later. Creates is called before Run, and what it returns is
// journaled (and fsync'd) before Run starts, so that a killed process can be
// cleaned up after.
type Creator interface {
	Creates(env *Env) ([]Resource, error)
}

// ErrNotCreated, wrapped in a Run error, says that the step created none of
// what its Creates declared (it found it there already, say): the engine
// records it as undone, so that teardown does not remove what the run did
// not make, and does not retry the step. It is target.ErrNotCreated, which
// targets return.
var ErrNotCreated = target.ErrNotCreated

// Deleter is implemented by specs that remove something a Creator made.
// In teardown, a step whose resources were never created is skipped.
type Deleter interface {
	Deletes(env *Env) ([]Resource, error)
}

// Timed is implemented by specs whose duration is known in advance, so a
// progress view can show how far along they are.
type Timed interface {
	Expected(env *Env) time.Duration
}

// FieldError is a problem with one field of a spec.
type FieldError struct {
	Field   string // the yaml key, or "" for the spec as a whole
	Message string
}

func (e FieldError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// Resource is something a step creates. Kind and Name identify it; Undo holds
// what the kind's Undo function needs to remove it, as JSON, so that it can
// be read back from the journal by another process.
type Resource struct {
	Kind string          `json:"kind"`
	Name string          `json:"name"`
	Undo json.RawMessage `json:"undo,omitempty"`
}

// ID returns the resource's identity, "kind/name".
func (r Resource) ID() string { return r.Kind + "/" + r.Name }

// Env is what a running step may use. The engine owns it; a step must not
// keep it after Run returns.
type Env struct {
	RunDir  string       // the run directory
	StepDir string       // a directory for this step's own files, created on first use by the step
	Target  target.Kind  // where the run's systems live
	Log     *slog.Logger // structured log into the run directory
	Attempt int          // 1 for the first attempt, 2 for the first retry, …
	Output  io.Writer    // where a step may write lines meant for people; never nil
	Status  func(string) // sets the step's live status line; never nil
	// Live gives a load's figures once a second, for the live line and
	// --output json; never nil.
	Live   func(LoadStatus)
	Shared *Shared // what the run's steps share; never nil
}

// LoadStatus is a load's state once a second: where it is in its pace,
// the last whole second's figures, and its failures and drops so far.
type LoadStatus struct {
	Phase     string  `json:"phase"`
	Step      int     `json:"step"`  // pace step, from 1
	Steps     int     `json:"steps"` // of the load
	TargetRPS float64 `json:"target_rps"`
	Second    int64   `json:"second"` // the second of the figures, on the timeline's axis
	// The last whole second's counts (its receipts may still arrive).
	Sent         int64   `json:"sent"`
	Delivered    int64   `json:"delivered"`
	SendFailures int64   `json:"send_failures"`
	Dropped      int64   `json:"dropped"`
	PublishP99MS float64 `json:"publish_p99_ms"`
	E2EP99MS     float64 `json:"e2e_p99_ms"`
	SendOnly     bool    `json:"send_only,omitempty"`
	// Since the load began.
	TotalSendFailures int64         `json:"total_send_failures"`
	TotalDropped      int64         `json:"total_dropped"`
	Elapsed           time.Duration `json:"-"`
	Total             time.Duration `json:"-"` // the pace's length; the drain comes after
	ElapsedSeconds    float64       `json:"elapsed_s"`
	TotalSeconds      float64       `json:"total_s"`
}

// UndoEnv is what a kind's Undo may use: in the run's own teardown, or in
// `runner cleanup` after the run's process died.
type UndoEnv struct {
	RunDir  string       // the run directory
	StepDir string       // the creating step's directory
	Log     *slog.Logger // structured log into the run directory
	// Target is where the run's systems live; nil when they died with the
	// run's process (a local run, in runner cleanup).
	Target target.Target
	// StopReceiver stops a receiver this process runs; nil when the
	// receivers died with the run's process.
	StopReceiver func(ctx context.Context, name string) error
}

// systems returns the target that what was made on kind lives on, or nil
// when it died with the run's process and nothing is left to undo.
func (u *UndoEnv) systems(kind target.Kind, what string) (target.Target, error) {
	if u.Target != nil {
		return u.Target, nil
	}
	if kind == target.Local || kind == "" {
		return nil, nil
	}
	return nil, fmt.Errorf("%s on target %s: cleanup on that target is not supported", what, kind)
}

// Kind describes one step kind.
type Kind struct {
	Name      string
	Doc       string                                                  // one sentence for `runner schema` and the README
	New       func() Spec                                             // a fresh, zero spec to decode into
	Retryable bool                                                    // whether `retries` is allowed on this kind
	Undo      func(ctx context.Context, u *UndoEnv, r Resource) error // removes what Creates declared; nil if the kind creates nothing
}

var registry = map[string]Kind{}

// Register adds a kind. It panics on a duplicate name, which is a programming
// error found by any test.
func Register(k Kind) {
	if _, dup := registry[k.Name]; dup {
		panic(fmt.Sprintf("steps: kind %q registered twice", k.Name))
	}
	registry[k.Name] = k
}

// Lookup returns the kind registered under name.
func Lookup(name string) (Kind, bool) {
	k, ok := registry[name]
	return k, ok
}

// Names returns the registered kind names, sorted.
func Names() []string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
