package main

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/perfrunner/runner/pace"
)

// durationValue is a duration flag that reads durations as paces do: bare
// seconds (30, 2.5) or a Go duration (30s, 5m).
type durationValue time.Duration

func (d *durationValue) Set(s string) error {
	v, err := pace.ParseDuration(s)
	if err != nil {
		return err
	}
	if v < 0 {
		return fmt.Errorf("duration %q must not be negative", s)
	}
	*d = durationValue(v)
	return nil
}

func (d *durationValue) String() string { return time.Duration(*d).String() }
func (d *durationValue) Type() string   { return "duration" }

// durationVar registers a duration flag that takes bare seconds too.
func durationVar(fs *pflag.FlagSet, p *time.Duration, name string, value time.Duration, usage string) {
	*p = value
	fs.Var((*durationValue)(p), name, usage+" (seconds, or a duration such as 30s, 5m)")
}
