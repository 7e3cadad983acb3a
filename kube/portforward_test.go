package kube

import (
	"strings"
	"testing"

	"github.com/perfrunner/runner/target"
)

func TestSinkNames(t *testing.T) {
	var tg Target
	for name, want := range map[string]string{
		"kafka/perf":         "on kubernetes a sink is service/<name>:<port>[/path]",
		"channel/perf":       "on kubernetes a sink is service/<name>:<port>[/path]",
		"service/app":        "not service/<name>:<port>[/path]",
		"service/app:http":   "not service/<name>:<port>[/path]",
		"pod/x:0":            "not pod/<name>:<port>[/path]",
		"service/:80":        "not service/<name>:<port>[/path]",
		"service/app:70000/": "not service/<name>:<port>[/path]",
	} {
		sink, err := target.ParseSink(name)
		if err == nil {
			_, err = tg.Sink(sink)
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Sink(%q) = %v, want %q", name, err, want)
		}
	}
}
