package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/perfrunner/runner/scenario"
	"github.com/perfrunner/runner/target"
)

// PlatformAction is what runner platform does with a platform file.
type PlatformAction string

// The actions of runner platform.
const (
	// PlatformInstall runs the file's setup and checks its provides; what
	// it installs stays, labelled with the platform rather than a run.
	// Should anything fail, teardown runs as a run's does and leaves
	// nothing.
	PlatformInstall PlatformAction = "install"
	// PlatformUninstall runs the file's teardown steps, each whatever the
	// journal holds, then sweeps everything labelled with the platform.
	PlatformUninstall PlatformAction = "uninstall"
)

// CheckRecord is one requirement checked before setup, for run.json.
type CheckRecord struct {
	Check    string `json:"check"`
	Platform string `json:"platform,omitempty"` // the platform file it comes from
	OK       bool   `json:"ok"`
	Found    string `json:"found,omitempty"` // what was found instead
}

// RequirementError is a run that did not start: the cluster lacks what the
// scenario requires.
type RequirementError struct {
	Missing []CheckRecord
	Install []string // the platform files to install
}

func (e *RequirementError) Error() string {
	var b strings.Builder
	b.WriteString("the cluster lacks what the scenario requires; nothing was set up:")
	for _, m := range e.Missing {
		fmt.Fprintf(&b, "\n  ✗ %s: %s", m.Check, m.Found)
		if m.Platform != "" {
			fmt.Fprintf(&b, " (platform %s)", m.Platform)
		}
	}
	for _, f := range e.Install {
		fmt.Fprintf(&b, "\ninstall it with: runner platform install %s --target kubernetes", f)
	}
	return b.String()
}

// recordSUT records in run.json the pods of the systems under test as
// setup left them: those of the namespaces the run used and of the
// platforms it requires.
func (r *Runner) recordSUT(ctx context.Context) {
	var namespaces []string
	add := func(ns string) {
		if ns != "" && !slices.Contains(namespaces, ns) {
			namespaces = append(namespaces, ns)
		}
	}
	for _, c := range r.required {
		add(c.Namespace)
	}
	r.shared.SetObserved(namespaces)
	inv, ok := r.target.(target.Inventory)
	if !ok {
		return
	}
	if c, ok := r.target.(target.Collector); ok {
		for _, ns := range c.Namespaces() {
			add(ns)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	pods, err := inv.Pods(ctx, namespaces)
	if err != nil {
		r.log.Warn("pods of the systems under test not recorded", "err", err)
	}
	r.record.SUT = pods
	r.save()
}

// restart restarts the Deployments of r.Restart on a target that can,
// before setup, and records which in run.json.
func (r *Runner) restart(ctx context.Context) error {
	if r.Restart == nil {
		return nil
	}
	t, ok := r.target.(target.Restarter)
	if !ok {
		r.log.Info("restart skipped: the target's systems start fresh with every run", "target", r.Target)
		return nil
	}
	ns := r.Restart.Namespace
	if ns == "" {
		ns = r.shared.Namespace("")
	}
	r.obs.Message("restarting deployments in " + ns + " before setup")
	ctx, cancel := context.WithTimeout(ctx, r.StepTimeout)
	defer cancel()
	names, err := t.Restart(ctx, ns, r.Restart.Deployments, r.Restart.Selector)
	if err != nil {
		return fmt.Errorf("restart before setup: %w", err)
	}
	r.record.Restarted = names
	r.save()
	return nil
}

// checkTimeout bounds the checks of a scenario's requirements.
const checkTimeout = 30 * time.Second

// checkRequirements checks, on a target that can, everything the scenario
// requires; on local the twins stand in for any platform.
func (r *Runner) checkRequirements(ctx context.Context) error {
	if len(r.Scenario.Requires) == 0 {
		return nil
	}
	c, ok := r.target.(target.Checker)
	if !ok {
		r.log.Info("requirements not checked: the target installs no platform", "target", r.Target)
		return nil
	}
	checks, from, err := r.Scenario.Requirements()
	if err != nil {
		return err
	}
	r.required = checks
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	records, missing := runChecks(ctx, c, checks, from)
	r.record.Requires = records
	r.save()
	if len(missing) == 0 {
		return nil
	}
	e := &RequirementError{}
	seen := map[string]bool{}
	for _, i := range missing {
		e.Missing = append(e.Missing, records[i])
		if p := from[i]; p != nil && !seen[p.File] {
			seen[p.File] = true
			e.Install = append(e.Install, p.File)
		}
	}
	return e
}

// runChecks checks each of checks, and returns what each found and the
// indexes of those that failed.
func runChecks(ctx context.Context, c target.Checker, checks []scenario.Check, from []*scenario.Platform) ([]CheckRecord, []int) {
	var records []CheckRecord
	var missing []int
	for i, ch := range checks {
		rec := CheckRecord{Check: ch.Label(), OK: true}
		if p := from[i]; p != nil {
			rec.Platform = p.Name
		}
		if err := c.Check(ctx, target.WaitSpec{Objects: []string{ch.Object}, Namespace: ch.Namespace, JSONPath: ch.JSONPath, Value: ch.Value}); err != nil {
			rec.OK, rec.Found = false, err.Error()
			missing = append(missing, i)
		}
		records = append(records, rec)
	}
	return records, missing
}

// CheckPlatform checks a platform's provides on c, for runner platform
// status: what each check found, and whether all held.
func CheckPlatform(ctx context.Context, c target.Checker, p *scenario.Scenario) ([]CheckRecord, bool) {
	from := make([]*scenario.Platform, len(p.Provides))
	records, missing := runChecks(ctx, c, p.Provides, from)
	return records, len(missing) == 0
}

// runPlatform installs or uninstalls the platform of the scenario file,
// in a run directory open.
func (r *Runner) runPlatform(ctx context.Context) error {
	var errs *multierror.Error
	failed := false
	if r.Platform == PlatformInstall {
		r.obs.PhaseStarted(scenario.Setup)
		list := r.Scenario.Steps[scenario.Setup]
		for i, s := range list {
			if err := r.runStep(ctx, s); err != nil {
				errs = multierror.Append(errs, err)
				failed = true
				r.skipSteps(list[i+1:], skipReason(ctx, failed))
				break
			}
		}
		if !failed && ctx.Err() == nil {
			if err := r.checkProvides(ctx); err != nil {
				errs = multierror.Append(errs, err)
				failed = true
			}
		}
		if failed || ctx.Err() != nil {
			r.collectTarget()
		}
	}
	if r.Platform == PlatformUninstall || failed || ctx.Err() != nil {
		r.obs.PhaseStarted(scenario.Teardown)
		if err := r.teardown(); err != nil {
			errs = multierror.Append(errs, err)
		}
	} else {
		r.skipPhase(scenario.Teardown, "the platform stays installed: runner platform uninstall removes it")
	}
	closeCtx, cancelClose := context.WithTimeout(context.Background(), 10*time.Second)
	if err := r.shared.Close(closeCtx); err != nil {
		errs = multierror.Append(errs, err)
	}
	cancelClose()
	return r.conclude(ctx, errs, nil)
}

// checkProvides checks, once setup is done, that the platform provides
// what it says.
func (r *Runner) checkProvides(ctx context.Context) error {
	c, ok := r.target.(target.Checker)
	if !ok || len(r.Scenario.Provides) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	records, ok := CheckPlatform(ctx, c, r.Scenario)
	r.record.Requires = records
	r.save()
	if ok {
		return nil
	}
	var bad []string
	for _, rec := range records {
		if !rec.OK {
			bad = append(bad, rec.Check+": "+rec.Found)
		}
	}
	return errors.New("set up, but the platform does not provide what it says: " + strings.Join(bad, "; "))
}
