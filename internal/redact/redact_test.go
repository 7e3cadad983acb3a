package redact

import "testing"

func TestTextRedactsPasswordsInsideWords(t *testing.T) {
	for in, want := range map[string]string{
		"sink=http://perf:pw-1@127.0.0.1:8080/":    "sink=http://perf:xxxxx@127.0.0.1:8080/",
		"--set=url=https://u:p%40ss@host/path a=b": "--set=url=https://u:xxxxx@host/path a=b",
		"http://user@host/":                        "http://user@host/",
		"no url here: a:b@c":                       "no url here: a:b@c",
	} {
		if got := Text(in); got != want {
			t.Errorf("Text(%q) = %q, want %q", in, got, want)
		}
	}
}
