package results

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// RunContext is what produced a run, for a reader who wants to produce it
// again or tell it from another: the command line, the variables and their
// overrides, the tags its author gave, and the machine it ran from. It is
// in run.json and report.md.
type RunContext struct {
	Command     []string          `json:"command,omitempty"` // the runner's arguments, passwords in URLs redacted
	Sets        []string          `json:"sets,omitempty"`    // --set key=value, as given
	ValuesFiles []string          `json:"values_files,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"` // --tag key=value
	// WarmupPace, when set, is the pace every warmup ran at instead of
	// its own (a matrix's --pace-override): the variables that set the
	// warmups' pace were not used then.
	WarmupPace string `json:"warmup_pace,omitempty"`
	// Vars are the scenario's variables, overrides applied: run.json has
	// them already, under vars.
	Vars        map[string]any `json:"-"`
	Environment Environment    `json:"environment"`
}

// Environment is the fingerprint of where the runner ran: its build, the
// machine's CPU and kernel, and the target it drove.
type Environment struct {
	Runner string `json:"runner"`
	Go     string `json:"go"`
	OS     string `json:"os"`
	Arch   string `json:"arch"`
	CPU    string `json:"cpu,omitempty"` // the model, as the kernel names it
	CPUs   int    `json:"cpus"`          // usable by the runner
	Kernel string `json:"kernel,omitempty"`
	Target string `json:"target"`
}

// Fingerprint returns the environment of this process, running version
// against target.
func Fingerprint(version, target string) Environment {
	e := Environment{Runner: version, Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(), Target: target, CPU: cpuModel()}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		e.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	return e
}

// cpuModel reads the first CPU's model name from /proc/cpuinfo; "" where
// there is none.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(key) == "model name" {
			return strings.TrimSpace(value)
		}
	}
	return ""
}

// String is the fingerprint on one line: "runner v1.2 (go1.26, linux/amd64)
// on 2 × AMD EPYC, kernel 6.18, target local".
func (e Environment) String() string {
	var b strings.Builder
	b.WriteString("runner " + e.Runner + " (" + e.Go + ", " + e.OS + "/" + e.Arch + ") on ")
	cpu := e.CPU
	if cpu == "" {
		cpu = "CPUs"
	}
	b.WriteString(strconv.Itoa(e.CPUs) + " × " + cpu)
	if e.Kernel != "" {
		b.WriteString(", kernel " + e.Kernel)
	}
	b.WriteString(", target " + e.Target)
	return b.String()
}
