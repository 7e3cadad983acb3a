// Package helm is the runner's one adapter to the Helm SDK: loading charts
// (embedded in the binary or from a directory), rendering them as
// `helm template` does, and linting them. Nothing else imports Helm, so a
// move to another Helm major version changes this file only.
package helm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/Masterminds/semver/v3"
	"gopkg.in/yaml.v3"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint/support"
)

// Chart is a loaded chart.
type Chart struct {
	Name        string
	Version     string
	Source      string            // "embedded:<name>", the directory it was read from, or "<repo> <name>@<version>", "oci://…@<version>"
	Digest      string            // of the archive downloaded, for a chart from a repository or a registry
	Annotations map[string]string // Chart.yaml's annotations
	Library     bool              // a library chart: templates for other charts, nothing to install
	chart       *chart.Chart
}

// Rendered is a chart rendered for one release.
type Rendered struct {
	Manifest string         // the rendered templates, as `helm template` prints them
	Values   map[string]any // the chart's defaults merged with the given values
}

// Object is one object of a rendered manifest, as far as names go.
type Object struct {
	Group string // from apiVersion; "" for the core group
	Kind  string // as written: InMemoryChannel
	Name  string
}

// Objects lists the objects of the rendered manifest, in order.
func (r *Rendered) Objects() ([]Object, error) {
	var out []Object
	dec := yaml.NewDecoder(strings.NewReader(r.Manifest))
	for {
		var obj struct {
			APIVersion string `yaml:"apiVersion"`
			Kind       string `yaml:"kind"`
			Metadata   struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
		}
		err := dec.Decode(&obj)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("rendered manifest: %w", err)
		}
		if obj.Kind == "" {
			continue
		}
		group, _, hasGroup := strings.Cut(obj.APIVersion, "/")
		if !hasGroup {
			group = ""
		}
		out = append(out, Object{Group: group, Kind: obj.Kind, Name: obj.Metadata.Name})
	}
}

// LoadFS loads the chart in directory dir of fsys, with the file://
// dependencies it declares (see Chart.yaml's dependencies) from fsys too.
func LoadFS(fsys fs.FS, dir, source string) (*Chart, error) {
	c, err := loadFS(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("chart %s: %w", source, err)
	}
	return wrap(c, source), nil
}

func loadFS(fsys fs.FS, dir string) (*chart.Chart, error) {
	var files []*loader.BufferedFile
	err := fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		files = append(files, &loader.BufferedFile{Name: strings.TrimPrefix(p, dir+"/"), Data: data})
		return nil
	})
	if err != nil {
		return nil, err
	}
	c, err := loader.LoadFiles(files)
	if err != nil {
		return nil, err
	}
	err = addFileDependencies(c, func(rel string) (*chart.Chart, error) { return loadFS(fsys, path.Join(dir, rel)) })
	return c, err
}

// LoadDir loads the chart in a directory on disk.
func LoadDir(dir string) (*Chart, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("chart %s: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("chart %s: not a directory", dir)
	}
	c, err := loadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("chart %s: %w", dir, err)
	}
	return wrap(c, dir), nil
}

func loadDir(dir string) (*chart.Chart, error) {
	c, err := loader.LoadDir(dir)
	if err != nil {
		return nil, err
	}
	err = addFileDependencies(c, func(rel string) (*chart.Chart, error) { return loadDir(filepath.Join(dir, rel)) })
	return c, err
}

// addFileDependencies adds to c the dependencies its Chart.yaml declares
// with a file:// repository and its charts/ does not hold, loaded by load
// from the path relative to the chart: what `helm dependency build` would
// vendor, so that a library chart lives in one place. A dependency
// elsewhere must be vendored in charts/.
func addFileDependencies(c *chart.Chart, load func(rel string) (*chart.Chart, error)) error {
	have := map[string]bool{}
	for _, d := range c.Dependencies() {
		have[d.Name()] = true
	}
	for _, dep := range c.Metadata.Dependencies {
		if have[dep.Name] {
			continue
		}
		rel, ok := strings.CutPrefix(dep.Repository, "file://")
		if !ok {
			return fmt.Errorf("dependency %s (%s) is not in charts/: vendor it with helm dependency build", dep.Name, dep.Repository)
		}
		sub, err := load(rel)
		if err != nil {
			return fmt.Errorf("dependency %s: %w", dep.Name, err)
		}
		if sub.Name() != dep.Name {
			return fmt.Errorf("dependency %s: %s holds chart %s", dep.Name, rel, sub.Name())
		}
		if dep.Version != "" {
			want, err := semver.NewConstraint(dep.Version)
			if err != nil {
				return fmt.Errorf("dependency %s: version %q: %w", dep.Name, dep.Version, err)
			}
			got, err := semver.NewVersion(sub.Metadata.Version)
			if err != nil || !want.Check(got) {
				return fmt.Errorf("dependency %s: %s is version %s, not %s", dep.Name, rel, sub.Metadata.Version, dep.Version)
			}
		}
		c.AddDependency(sub)
	}
	return nil
}

func wrap(c *chart.Chart, source string) *Chart {
	return &Chart{Name: c.Name(), Version: c.Metadata.Version, Source: source, Annotations: c.Metadata.Annotations, Library: c.Metadata.Type == "library", chart: c}
}

// Render renders the chart for a release client-side, as `helm template`
// does: the values are merged with the chart's defaults and checked against
// its values.schema.json, and every template must render. The error is
// Helm's own message.
func (c *Chart) Render(ctx context.Context, release, namespace string, values map[string]any) (*Rendered, error) {
	install := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	install.DryRun = true
	install.ClientOnly = true
	install.Replace = true
	install.IncludeCRDs = true
	install.ReleaseName = release
	install.Namespace = namespace
	if values == nil {
		values = map[string]any{}
	}
	rel, err := install.RunWithContext(ctx, c.chart, values)
	if err != nil {
		return nil, err
	}
	merged, err := chartutil.CoalesceValues(c.chart, values)
	if err != nil {
		return nil, err
	}
	return &Rendered{Manifest: rel.Manifest, Values: merged.AsMap()}, nil
}

// Lint lints the chart in a directory on disk as `helm dependency build`
// then `helm lint --strict` do, and returns every message at warning level
// or above. The chart's file:// dependencies are vendored into a copy of
// it, never into the directory itself.
func Lint(dir string) []string {
	lintDir, cleanup, err := vendored(dir)
	if err != nil {
		return []string{err.Error()}
	}
	defer cleanup()
	l := action.NewLint()
	l.Strict = true
	res := l.Run([]string{lintDir}, map[string]any{})
	var msgs []string
	for _, m := range res.Messages {
		if m.Severity >= support.WarningSev {
			msgs = append(msgs, strings.ReplaceAll(m.Error(), lintDir, dir))
		}
	}
	for _, err := range res.Errors {
		msgs = append(msgs, strings.ReplaceAll(err.Error(), lintDir, dir))
	}
	return msgs
}

// vendored returns dir itself when its chart declares no file://
// dependency it lacks, else a copy of it with those dependencies in its
// charts/ (as packages, as helm dependency build writes them).
func vendored(dir string) (string, func(), error) {
	c, err := loader.LoadDir(dir)
	if err != nil {
		return dir, func() {}, nil // lint reports it
	}
	full, err := loadDir(dir)
	if err != nil {
		return "", nil, fmt.Errorf("chart %s: %w", dir, err)
	}
	if len(full.Dependencies()) == len(c.Dependencies()) {
		return dir, func() {}, nil
	}
	tmp, err := os.MkdirTemp("", "runner-lint-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.RemoveAll(tmp) }
	copyDir := filepath.Join(tmp, filepath.Base(dir))
	if err := os.CopyFS(copyDir, os.DirFS(dir)); err != nil {
		cleanup()
		return "", nil, err
	}
	if err := os.MkdirAll(filepath.Join(copyDir, "charts"), 0o755); err != nil {
		cleanup()
		return "", nil, err
	}
	for _, sub := range full.Dependencies() {
		if _, err := chartutil.Save(sub, filepath.Join(copyDir, "charts")); err != nil {
			cleanup()
			return "", nil, err
		}
	}
	return copyDir, cleanup, nil
}

// ValidReleaseName reports whether name can name a Helm release.
func ValidReleaseName(name string) error {
	return chartutil.ValidateReleaseName(name)
}
