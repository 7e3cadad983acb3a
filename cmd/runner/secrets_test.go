package main

import (
	"compress/gzip"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestNoSecretInResults plants a token (an exec step's secretEnv) and a URL
// password (a sink URL set with --set) in a run that succeeds, then reads
// every file of its directory, gzip streams decompressed, and what it
// printed: neither is anywhere, and every file and directory is the
// owner's only.
func TestNoSecretInResults(t *testing.T) {
	const token, password = "tok-3f9a1c7e5b2d", "pw-8e1d4b6a0c3f"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	dir := t.TempDir()
	file := writeScenario(t, dir, `name: secrets
vars: {sink: ""}
setup:
  - receiver: {name: perf, address: "127.0.0.1:`+port+`"}
  - name: login
    exec:
      command: [sh, -c, 'printf %s "$RUNNER_TEST_TOKEN" | cksum > DIR/run']
      secretEnv: [RUNNER_TEST_TOKEN]
      undo: [sh, -c, 'printf %s "$RUNNER_TEST_TOKEN" | cksum > DIR/undo']
measure:
  - load: {url: "{{ .Vars.sink }}", pace: "20:1", drainTimeout: 5s}
`)
	results := filepath.Join(dir, "results")
	cmd := exec.Command(os.Args[0], "exec", file, "--out", results, "--set", "sink=http://perf:"+password+"@127.0.0.1:"+port+"/")
	cmd.Env = append(os.Environ(), "RUNNER_TEST_AS_CLI=1", "RUNNER_TEST_TOKEN="+token)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("exec: %v\n%s", err, out)
	}
	for _, secret := range []string{token, password} {
		if strings.Contains(string(out), secret) {
			t.Errorf("%q is on the terminal:\n%s", secret, out)
		}
	}
	// The command and its undo both received the token.
	want, err := exec.Command("sh", "-c", "printf %s "+token+" | cksum").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"run", "undo"} {
		if got, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(got) != string(want) {
			t.Errorf("%s received %q (%v), want the token's checksum %q", name, got, err, want)
		}
	}
	files := 0
	err = filepath.WalkDir(results, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if perm := info.Mode().Perm(); d.IsDir() && perm != 0o700 || !d.IsDir() && perm != 0o600 {
			t.Errorf("%s has mode %v", path, perm)
		}
		if d.IsDir() {
			return nil
		}
		files++
		data, err := readPlain(path)
		if err != nil {
			return err
		}
		for _, secret := range []string{token, password} {
			if strings.Contains(string(data), secret) {
				t.Errorf("%s holds %q", path, secret)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 10 {
		t.Errorf("only %d files in the run", files)
	}
}

// readPlain reads a file, decompressed when it is gzip.
func readPlain(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if !strings.HasSuffix(path, ".gz") {
		return io.ReadAll(f)
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

func TestSecretEnvMustBeSetToValidate(t *testing.T) {
	dir := t.TempDir()
	file := writeScenario(t, dir, "name: s\nsetup:\n  - exec: {command: [\"true\"], env: {B: x}, secretEnv: [RUNNER_TEST_UNSET_VARIABLE, B, 9x]}\n")
	code, stdout, stderr := runCLI("validate", file)
	want := []string{
		`s.yaml:3:44: step "setup[0]" (exec): secretEnv: RUNNER_TEST_UNSET_VARIABLE is not set in the runner's environment`,
		`s.yaml:3:44: step "setup[0]" (exec): secretEnv: B is in env too: give it in one place`,
		`s.yaml:3:44: step "setup[0]" (exec): secretEnv: "9x" is not a variable name (letters, digits and _, not starting with a digit)`,
	}
	for _, w := range want {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr lacks %s", w)
		}
	}
	if code != exitBadInput {
		t.Errorf("exit %d\n%s%s", code, stdout, stderr)
	}
}
