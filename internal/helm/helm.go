// Package helm is the runner's one adapter to the Helm SDK: loading charts
// (embedded in the binary or from a directory), rendering them as
// `helm template` does, and linting them. Nothing else imports Helm, so a
// move to another Helm major version changes this file only.
package helm

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"strings"

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
	Source      string            // "embedded:<name>" or the directory it was read from
	Annotations map[string]string // Chart.yaml's annotations
	chart       *chart.Chart
}

// Rendered is a chart rendered for one release.
type Rendered struct {
	Manifest string         // the rendered templates, as `helm template` prints them
	Values   map[string]any // the chart's defaults merged with the given values
}

// LoadFS loads the chart in directory dir of fsys.
func LoadFS(fsys fs.FS, dir, source string) (*Chart, error) {
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
		return nil, fmt.Errorf("chart %s: %w", source, err)
	}
	c, err := loader.LoadFiles(files)
	if err != nil {
		return nil, fmt.Errorf("chart %s: %w", source, err)
	}
	return wrap(c, source), nil
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
	c, err := loader.LoadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("chart %s: %w", dir, err)
	}
	return wrap(c, dir), nil
}

func wrap(c *chart.Chart, source string) *Chart {
	return &Chart{Name: c.Name(), Version: c.Metadata.Version, Source: source, Annotations: c.Metadata.Annotations, chart: c}
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

// Lint lints the chart in a directory on disk as `helm lint --strict` does
// and returns every message at warning level or above.
func Lint(dir string) []string {
	l := action.NewLint()
	l.Strict = true
	res := l.Run([]string{dir}, map[string]any{})
	var msgs []string
	for _, m := range res.Messages {
		if m.Severity >= support.WarningSev {
			msgs = append(msgs, m.Error())
		}
	}
	for _, err := range res.Errors {
		msgs = append(msgs, err.Error())
	}
	return msgs
}

// ValidReleaseName reports whether name can name a Helm release.
func ValidReleaseName(name string) error {
	return chartutil.ValidateReleaseName(name)
}
