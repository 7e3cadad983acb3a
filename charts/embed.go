// Package charts holds the Helm charts of everything a scenario can
// install, embedded in the binary so that `runner exec` works from any
// directory. Each chart names its embedded twin, what `--target local` starts
// in its place, in Chart.yaml's annotation runner.perf/twin.
package charts

import (
	"embed"
	"io/fs"
	"regexp"
)

// FS holds one directory per chart.
//
//go:embed */Chart.yaml */values.yaml */values.schema.json all:*/templates
var FS embed.FS

// TwinAnnotation is the Chart.yaml annotation that names a chart's twin.
const TwinAnnotation = "runner.perf/twin"

// Library reports whether the chart named name is a library chart:
// templates the other charts include, nothing to install.
func Library(name string) bool {
	data, err := fs.ReadFile(FS, name+"/Chart.yaml")
	return err == nil && libraryType.Match(data)
}

var libraryType = regexp.MustCompile(`(?m)^type:\s*library\s*$`)

// ClusterOnlyAnnotation, set to "true" in Chart.yaml, marks a chart that has
// no twin on purpose: it only makes sense in a cluster.
const ClusterOnlyAnnotation = "runner.perf/cluster-only"

// AgentsAnnotation is the Chart.yaml annotation of a chart whose pods are
// the runner's agents; its value is the name of their control port.
const AgentsAnnotation = "runner.perf/agents"

// ImageRepository is where the runner's image is published; an agents
// chart installed without an image gets this repository at the runner's
// version.
const ImageRepository = "ghcr.io/perfrunner/runner"
