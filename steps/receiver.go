package steps

import (
	"context"
	"fmt"

	"github.com/perfrunner/runner/target"
)

func init() {
	Register(Kind{
		Name: "receiver",
		Doc:  "Starts an embedded CloudEvents receiver on loopback and names it as the sink receiver/<name>.",
		New:  func() Spec { return new(Receiver) },
		Undo: undoReceiver,
	})
}

// Receiver starts an in-process CloudEvents sink that timestamps every
// event for end-to-end latency.
type Receiver struct {
	Name    string `yaml:"name" doc:"the sink's name: load steps reach it as receiver/<name> (default perf)"`
	Address string `yaml:"address" doc:"host:port to listen on (default 127.0.0.1:0, any free port)"`
}

func (r *Receiver) name() string {
	if r.Name == "" {
		return "perf"
	}
	return r.Name
}

// Validate checks the name.
func (r *Receiver) Validate() []FieldError {
	if r.Name != "" && !ValidName(r.Name) {
		return []FieldError{{Field: "name", Message: NameRule}}
	}
	return nil
}

// MaxNameLength bounds a name ValidName accepts: a scenario's and a pace
// set's names are directory names of the run, which a file system bounds.
const MaxNameLength = 100

// NameRule says what ValidName accepts, for messages.
var NameRule = fmt.Sprintf("may hold only letters, digits, '.', '_' and '-', at most %d of them", MaxNameLength)

// ValidName reports whether s can name a scenario, a pace set or a sink: it
// becomes part of a path or a URL, so it holds only letters, digits, '.',
// '_' and '-', at most MaxNameLength of them, and is not "." or "..".
func ValidName(s string) bool {
	if len(s) > MaxNameLength {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return s != "" && s != "." && s != ".."
}

// Creates declares the receiver, so that teardown stops it.
func (r *Receiver) Creates(*Env) ([]Resource, error) {
	return []Resource{{Kind: "receiver", Name: r.name()}}, nil
}

// Run starts the receiver.
func (r *Receiver) Run(_ context.Context, env *Env) error {
	addr := r.Address
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	url, _, err := env.Shared.startReceiver(r.name(), addr)
	if err != nil {
		return err
	}
	env.Log.Info("receiver listening", "sink", target.SinkName(target.SinkReceiver, r.name()), "url", url)
	return nil
}

// undoReceiver stops the receiver. In another process (runner cleanup) there
// is nothing to stop: an embedded receiver dies with its runner.
func undoReceiver(ctx context.Context, env *UndoEnv, r Resource) error {
	if env.StopReceiver == nil {
		return nil
	}
	return env.StopReceiver(ctx, r.Name)
}
