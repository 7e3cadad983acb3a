// Package charts holds the Helm charts of everything a scenario can
// install, embedded in the binary so that `runner exec` works from any
// directory. Each chart names its embedded twin, what `--target local` starts
// in its place, in Chart.yaml's annotation runner.perf/twin.
package charts

import "embed"

// FS holds one directory per chart.
//
//go:embed */Chart.yaml */values.yaml */values.schema.json all:*/templates
var FS embed.FS

// TwinAnnotation is the Chart.yaml annotation that names a chart's twin.
const TwinAnnotation = "runner.perf/twin"

// ClusterOnlyAnnotation, set to "true" in Chart.yaml, marks a chart that has
// no twin on purpose: it only makes sense in a cluster.
const ClusterOnlyAnnotation = "runner.perf/cluster-only"
