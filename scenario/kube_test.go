package scenario

import (
	"strings"
	"testing"
)

// The kube step kinds decode strictly, helm.upgrade's fields being
// helm.install's, and their rules are checked before anything runs.
func TestKubeStepsDecode(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"upgrade takes install's fields", "helm.install: {release: a, chart: kafka}\n  - helm.upgrade: {release: a, chart: kafka, set: [\"brokers=2\"], values: {partitions: 3}}", ""},
		{"upgrade needs an install", `helm.upgrade: {release: a, chart: kafka}`, `release: no earlier step installs release "a"`},
		{"upgrade refuses unknown keys", `helm.upgrade: {release: a, chart: kafka, atomicc: true}`, `unknown key "atomicc"`},
		{"upgrade checks the release name", `helm.upgrade: {release: A_B, chart: kafka}`, "release"},
		{"wait needs something", `kube.wait: {namespace: x}`, "give a release, objects (for), or both"},
		{"wait jsonpath needs a value", `kube.wait: {for: [deployment/a], jsonpath: "{.status.phase}"}`, "jsonpath and value go together"},
		{"wait jsonpath must parse", `kube.wait: {for: [deployment/a], jsonpath: "{.status", value: x}`, "jsonpath"},
		{"wait objects are kind/name", `kube.wait: {for: [deployment]}`, `"deployment" is not kind/name`},
		{"apply needs manifests", `kube.apply: {namespace: x}`, "give files, a manifest, or both"},
		{"apply inline must parse", "kube.apply: {manifest: \"a: [\"}", "manifest: document 1"},
		{"apply objects need a name", "kube.apply: {manifest: \"apiVersion: v1\\nkind: ConfigMap\\n\"}", "an object needs apiVersion, kind and metadata.name"},
		{"delete is apply's shape", `kube.delete: {files: [a.yaml], namespace: Bad}`, "namespace"},
		{"logs namespaces", `kube.logs: {namespaces: [ok, "no/"]}`, "namespaces"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := "name: s\nsetup:\n  - " + tc.src + "\n"
			lines := decodeErrors(t, src, Options{})
			got := strings.Join(lines, "\n")
			if tc.want == "" && got != "" {
				t.Fatalf("unexpected errors:\n%s", got)
			}
			if tc.want != "" && !strings.Contains(got, tc.want) {
				t.Fatalf("errors:\n%s\nwant %q", got, tc.want)
			}
		})
	}
}
