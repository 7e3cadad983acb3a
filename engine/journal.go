package engine

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/perfrunner/runner/scenario"
	"github.com/perfrunner/runner/steps"
)

// JournalFile is the journal's name in a run directory.
const JournalFile = "journal.jsonl"

// journalEntry is one line of the journal. A "create" entry is written and
// fsync'd before the step that creates the resource runs; an "undone" entry
// after the resource was removed.
type journalEntry struct {
	Time     time.Time      `json:"time"`
	Op       string         `json:"op"` // "create" or "undone"
	Resource steps.Resource `json:"resource"`
	Step     string         `json:"step,omitempty"`
	Pos      string         `json:"pos,omitempty"`
}

// Journal records what a run creates, durably, so that another process can
// undo it. It is safe for use by one goroutine at a time.
type Journal struct {
	f *os.File
}

// OpenJournal opens (creating if needed) the journal in dir for appending.
func OpenJournal(dir string) (*Journal, error) {
	path := dir + "/" + JournalFile
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	// A process killed mid-write leaves a torn last line; end it, so that
	// what is appended now is not glued to it.
	if info, err := f.Stat(); err == nil && info.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, info.Size()-1); err == nil && last[0] != '\n' {
			if _, err := f.Write([]byte("\n")); err != nil {
				f.Close()
				return nil, fmt.Errorf("repair journal: %w", err)
			}
		}
	}
	return &Journal{f: f}, nil
}

// Close closes the journal file.
func (j *Journal) Close() error { return j.f.Close() }

func (j *Journal) append(e journalEntry) error {
	e.Time = time.Now().UTC()
	line, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if _, err := j.f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("write journal: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("sync journal: %w", err)
	}
	return nil
}

// Creating records that s is about to create r.
func (j *Journal) Creating(r steps.Resource, s *scenario.Step) error {
	return j.append(journalEntry{Op: "create", Resource: r, Step: s.Name, Pos: s.Pos.String()})
}

// Undone records that r was removed.
func (j *Journal) Undone(r steps.Resource) error {
	return j.append(journalEntry{Op: "undone", Resource: steps.Resource{Kind: r.Kind, Name: r.Name}})
}

// Pending reads the journal in dir and returns the resources created and not
// yet undone, in the order they were created. A torn last line (a process
// killed mid-write) is ignored: its step had not started.
func Pending(dir string) ([]steps.Resource, error) {
	f, err := os.Open(dir + "/" + JournalFile)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	defer f.Close()
	var order []string
	created := map[string]steps.Resource{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for line := 1; sc.Scan(); line++ {
		var e journalEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			continue
		}
		id := e.Resource.ID()
		switch e.Op {
		case "create":
			if _, seen := created[id]; !seen {
				order = append(order, id)
			}
			created[id] = e.Resource
		case "undone":
			delete(created, id)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read journal: %w", err)
	}
	var out []steps.Resource
	for _, id := range order {
		if r, ok := created[id]; ok {
			out = append(out, r)
		}
	}
	return out, nil
}
