package steps

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/perfrunner/runner/pace"
	"github.com/perfrunner/runner/target"
)

// Profile asks for pprof profiles during one pace step of a load.
type Profile struct {
	Step     int           `yaml:"step" doc:"the pace step of this load to profile, from 1; 0 takes none, so that a variable can turn profiling off"`
	After    time.Duration `yaml:"after" doc:"how far into the step profiling starts (default 1s)"`
	Duration time.Duration `yaml:"duration" doc:"how long the CPU profile runs; the other kinds are taken when it ends (default 5s); after + duration must fit in the step"`
	Pods     []string      `yaml:"pods" doc:"on kubernetes, the pods to profile: namespace/name (a pod's name or its start, e.g. a Deployment's name) or namespace/key=value (a label selector); on local the runner profiles its own process, in which the twins and the load run"`
	Port     int           `yaml:"port" doc:"the pods' port that serves /debug/pprof (default 8008, Knative's profiling port: config-observability's runtime-profiling must be enabled)"`
	Kinds    []string      `yaml:"kinds" doc:"what to take: cpu, heap, allocs, goroutine (default cpu and heap)"`
}

// ProfilesDir holds a run's profiles.
const ProfilesDir = "profiles"

var profileKinds = []string{"cpu", "heap", "allocs", "goroutine"}

// Defaults of a profile.
const (
	defaultProfileAfter    = time.Second
	defaultProfileDuration = 5 * time.Second
	defaultProfilePort     = 8008
)

func (p Profile) after() time.Duration    { return cmp.Or(p.After, defaultProfileAfter) }
func (p Profile) duration() time.Duration { return cmp.Or(p.Duration, defaultProfileDuration) }
func (p Profile) port() int               { return cmp.Or(p.Port, defaultProfilePort) }
func (p Profile) kinds() []string {
	if len(p.Kinds) == 0 {
		return []string{"cpu", "heap"}
	}
	return p.Kinds
}

// validateProfiles checks the profiles' fields on their own.
func validateProfiles(list []Profile) []FieldError {
	var errs []FieldError
	for i, p := range list {
		bad := func(field, format string, args ...any) {
			errs = append(errs, FieldError{Field: fmt.Sprintf("profiles[%d].%s", i, field), Message: fmt.Sprintf(format, args...)})
		}
		if p.Step < 0 {
			bad("step", "must be 1 or more (0: no profile)")
		}
		if p.After < 0 {
			bad("after", "must be positive")
		}
		if p.Duration < 0 || p.Duration > time.Hour {
			bad("duration", "must be between 1s and 1h")
		} else if p.Duration > 0 && p.Duration < time.Second {
			bad("duration", "%s: pprof profiles in whole seconds, at least 1s", p.Duration)
		}
		if p.Port < 0 || p.Port > 65535 {
			bad("port", "%d is not a port", p.Port)
		}
		for _, k := range p.Kinds {
			if !slices.Contains(profileKinds, k) {
				bad("kinds", "%q is not one of %s", k, strings.Join(profileKinds, ", "))
			}
		}
		for _, pod := range p.Pods {
			if ns, name, ok := strings.Cut(pod, "/"); !ok || ns == "" || name == "" {
				bad("pods", "%q: want namespace/name or namespace/key=value", pod)
			}
		}
	}
	return errs
}

// profileRun takes a load's profiles at their pace steps.
type profileRun struct {
	env      *Env
	profiles []Profile
	steps    []pace.Step
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	mu    sync.Mutex
	lines []string // what was taken, or why not, for people
}

// newProfileRun checks the profiles against the load's pace: each must
// fit in its step.
func newProfileRun(ctx context.Context, env *Env, list []Profile, steps []pace.Step) (*profileRun, error) {
	var profiles []Profile
	for i, p := range list {
		k := p.Step
		if k == 0 {
			continue // turned off
		}
		profiles = append(profiles, p)
		if k > len(steps) {
			return nil, fmt.Errorf("profiles[%d]: step %d, but the load has %d pace steps", i, k, len(steps))
		}
		if d := steps[k-1].Duration; p.after()+p.duration() > d {
			return nil, fmt.Errorf("profiles[%d]: after %s + duration %s do not fit in pace step %d (%s)", i, p.after(), p.duration(), k, d)
		}
		if env.Shared.Info.Target != target.Local && len(p.Pods) == 0 {
			return nil, fmt.Errorf("profiles[%d]: name the pods to profile (pods: [namespace/name])", i)
		}
	}
	if len(profiles) == 0 {
		return nil, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	return &profileRun{env: env, profiles: profiles, steps: steps, ctx: ctx, cancel: cancel}, nil
}

// begin schedules every profile once the load's start is fixed.
func (r *profileRun) begin(start time.Time) {
	for _, p := range r.profiles {
		k := p.Step
		at := start
		for _, s := range r.steps[:k-1] {
			at = at.Add(s.Duration)
		}
		at = at.Add(p.after())
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			select {
			case <-r.ctx.Done():
				return
			case <-time.After(time.Until(at)):
			}
			r.take(p, k)
		}()
	}
}

// wait waits until every profile is taken and prints what each gave; with
// stopped (the load ended early), the profiles not begun are left out.
func (r *profileRun) wait(stopped bool) {
	if stopped {
		r.cancel()
	}
	r.wg.Wait()
	r.cancel()
	r.mu.Lock()
	defer r.mu.Unlock()
	slices.Sort(r.lines)
	for _, l := range r.lines {
		fmt.Fprintln(r.env.Output, l)
	}
}

func (r *profileRun) say(format string, args ...any) {
	r.mu.Lock()
	r.lines = append(r.lines, fmt.Sprintf(format, args...))
	r.mu.Unlock()
	r.env.Log.Info("profile", "result", fmt.Sprintf(format, args...))
}

// take takes profile p during pace step k, of this process on local, of
// its pods on a cluster.
func (r *profileRun) take(p Profile, k int) {
	step := fmt.Sprintf("step%d-%grps", k, r.steps[k-1].RPS)
	where := fmt.Sprintf("pace step %d (%g/s)", k, r.steps[k-1].RPS)
	if r.env.Shared.Info.Target == target.Local {
		r.takeSelf(p, step, where)
		return
	}
	t, _ := r.env.Shared.Target()
	prof, ok := t.(target.Profiler)
	if !ok {
		r.say("  profiles: target %s cannot fetch profiles from pods", r.env.Shared.Info.Target)
		return
	}
	var pods []target.ProfiledPod
	for _, spec := range p.Pods {
		found, err := prof.ProfilePods(r.ctx, spec, p.port())
		if err != nil {
			r.say("  profile in %s not taken: %v", where, err)
			continue
		}
		pods = append(pods, found...)
	}
	var wg sync.WaitGroup
	for _, pod := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := pod.Namespace + "/" + pod.Pod + "/" + pod.Container
			for _, kind := range orderKinds(p.kinds()) {
				path := "/debug/pprof/" + kind
				timeout := 30 * time.Second
				if kind == "cpu" {
					path = fmt.Sprintf("/debug/pprof/profile?seconds=%d", int(p.duration().Seconds()))
					timeout += p.duration()
				}
				ctx, cancel := context.WithTimeout(r.ctx, timeout)
				data, err := prof.FetchProfile(ctx, pod, p.port(), path)
				cancel()
				if err != nil {
					r.say("  profile %s of %s in %s not taken: %v", kind, name, where, err)
					continue
				}
				r.save(fmt.Sprintf("%s.%s.%s.%s.pprof", pod.Pod, pod.Container, step, kind), data, kind, name, where, p.duration())
			}
		}()
	}
	wg.Wait()
}

// orderKinds puts the CPU profile first: the others are taken when it
// ends, at the end of the window it covers.
func orderKinds(kinds []string) []string {
	out := slices.Clone(kinds)
	slices.SortStableFunc(out, func(a, b string) int {
		switch {
		case a == "cpu" && b != "cpu":
			return -1
		case b == "cpu" && a != "cpu":
			return 1
		}
		return 0
	})
	return out
}

// takeSelf profiles the runner's own process.
func (r *profileRun) takeSelf(p Profile, step, where string) {
	name := fmt.Sprintf("the runner (pid %d)", os.Getpid())
	for _, kind := range orderKinds(p.kinds()) {
		var buf bytes.Buffer
		if kind == "cpu" {
			if err := pprof.StartCPUProfile(&buf); err != nil {
				r.say("  profile cpu of %s in %s not taken: %v", name, where, err)
				continue
			}
			select {
			case <-r.ctx.Done():
			case <-time.After(p.duration()):
			}
			pprof.StopCPUProfile()
		} else if err := pprof.Lookup(kind).WriteTo(&buf, 0); err != nil {
			r.say("  profile %s of %s in %s not taken: %v", kind, name, where, err)
			continue
		}
		r.save(fmt.Sprintf("runner.%s.%s.pprof", step, kind), buf.Bytes(), kind, name, where, p.duration())
	}
}

// save writes a profile into the run's profiles directory and says how to
// open it.
func (r *profileRun) save(file string, data []byte, kind, name, where string, d time.Duration) {
	dir := filepath.Join(r.env.RunDir, ProfilesDir)
	path := filepath.Join(dir, file)
	err := os.MkdirAll(dir, 0o700)
	if err == nil {
		err = os.WriteFile(path, data, 0o600)
	}
	if err != nil {
		r.say("  profile %s of %s in %s not saved: %v", kind, name, where, err)
		return
	}
	what := kind
	if kind == "cpu" {
		what = fmt.Sprintf("cpu (%s)", d)
	}
	r.say("  profile %s of %s in %s: go tool pprof -http=: %s", what, name, where, path)
}
