package steps

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/perfrunner/runner/charts"
	"github.com/perfrunner/runner/internal/helm"
	"github.com/perfrunner/runner/internal/input"
	"github.com/perfrunner/runner/internal/strictyaml"
	"github.com/perfrunner/runner/target"
)

func init() {
	Register(Kind{
		Name: "helm.install",
		Doc:  "Installs a chart as a release: on local, the chart is rendered as helm template does and its embedded twin started with its values.",
		New:  func() Spec { return new(HelmInstall) },
		Undo: undoRelease,
	})
	Register(Kind{
		Name: "helm.upgrade",
		Doc:  "Upgrades a release a helm.install step made to a chart and values, waits until it is ready, and rolls it back on failure (kubernetes only).",
		New:  func() Spec { return new(HelmUpgrade) },
	})
	Register(Kind{
		Name: "helm.uninstall",
		Doc:  "Uninstalls a release a helm.install step made.",
		New:  func() Spec { return new(HelmUninstall) },
	})
}

// defaultNamespace is where releases go when a step names no namespace.
const defaultNamespace = "default"

// HelmInstall installs a chart.
type HelmInstall struct {
	Release     string         `yaml:"release" runner:"required" doc:"the release's name (at most 53 characters: lower-case letters, digits and '-')"`
	Chart       string         `yaml:"chart" runner:"required" doc:"a chart shipped with the runner by name (kafka, in-memory-channel, …), a chart directory relative to the scenario file, a chart's name in repo, or an OCI reference (oci://host/repository/chart)"`
	Repo        string         `yaml:"repo" doc:"a chart repository's URL (as helm repo add takes it): chart is the name of a chart in it, pinned by version"`
	Version     string         `yaml:"version" doc:"the chart's version: required for a chart from repo or an OCI registry; for a directory or a shipped chart, the version it must have"`
	Digest      string         `yaml:"digest" doc:"the sha256:<hex> digest that the downloaded chart archive must have"`
	Namespace   string         `yaml:"namespace" doc:"the release's namespace (default: the run's: -n on kubernetes, else default); on kubernetes one that does not exist is created, labelled with the run, and removed by teardown"`
	Values      map[string]any `yaml:"values" doc:"values for the chart, over its defaults and the values files"`
	ValuesFiles []string       `yaml:"valuesFiles" doc:"YAML files of values, relative to the scenario file; later ones win"`
	Set         []string       `yaml:"set" doc:"values as helm --set writes them (a.b=1,c[0]=x), over values and values files"`
}

// Validate checks the release's and the namespace's names, and how the
// chart is named.
func (h *HelmInstall) Validate() []FieldError {
	var errs []FieldError
	remote := h.Repo != "" || helm.IsOCI(h.Chart)
	switch {
	case h.Repo != "" && helm.IsOCI(h.Chart):
		errs = append(errs, FieldError{Field: "repo", Message: "an oci:// chart names its registry itself: give repo or an oci:// chart, not both"})
	case h.Repo != "" && (strings.ContainsRune(h.Chart, '/') || strings.HasPrefix(h.Chart, ".")):
		errs = append(errs, FieldError{Field: "chart", Message: fmt.Sprintf("with repo, chart is the name of a chart in it, not a path (%q)", h.Chart)})
	case remote && h.Version == "":
		errs = append(errs, FieldError{Field: "version", Message: "a chart from a repository or a registry is pinned: give its version"})
	case !remote && h.Digest != "":
		errs = append(errs, FieldError{Field: "digest", Message: "digest pins a chart archive from repo or an oci:// reference; a shipped chart or a directory has none"})
	}
	if h.Digest != "" && !validDigest(h.Digest) {
		errs = append(errs, FieldError{Field: "digest", Message: fmt.Sprintf("%q is not sha256:<64 hex digits>", h.Digest)})
	}
	if h.Release != "" {
		if err := helm.ValidReleaseName(h.Release); err != nil {
			errs = append(errs, FieldError{Field: "release", Message: err.Error()})
		}
	}
	if h.Namespace != "" && !validNamespace(h.Namespace) {
		errs = append(errs, FieldError{Field: "namespace", Message: namespaceRule})
	}
	return errs
}

const namespaceRule = "a namespace is at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit"

// validNamespace reports whether s is a DNS-1123 label, as Kubernetes
// requires of a namespace's name.
func validNamespace(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func (h *HelmInstall) namespace(env *Env) string { return env.Shared.Namespace(h.Namespace) }

// releaseUndo is what a journaled release needs to be removed.
type releaseUndo struct {
	Release   string      `json:"release"`
	Namespace string      `json:"namespace"`
	Target    target.Kind `json:"target"`
}

// Creates declares the release, so that teardown uninstalls it.
func (h *HelmInstall) Creates(env *Env) ([]Resource, error) {
	undo, err := json.Marshal(releaseUndo{Release: h.Release, Namespace: h.namespace(env), Target: env.Target})
	if err != nil {
		return nil, err
	}
	return []Resource{{Kind: "helm.install", Name: h.namespace(env) + "/" + h.Release, Undo: undo}}, nil
}

// Run loads the chart, merges the values and installs the release.
func (h *HelmInstall) Run(ctx context.Context, env *Env) error {
	t, err := env.Shared.Target()
	if err != nil {
		return err
	}
	c, values, err := h.load(env)
	if err != nil {
		return err
	}
	env.Status("installing " + c.Name + " as " + h.Release)
	env.Log.Info("installing", "release", h.Release, "namespace", h.namespace(env), "chart", c.Source, "version", c.Version)
	if err := t.Install(ctx, c, h.Release, h.namespace(env), values); err != nil {
		return err
	}
	env.Shared.recordChart(ChartRecord{Release: h.Release, Namespace: h.namespace(env), Chart: c.Name, Version: c.Version, Source: c.Source, Digest: c.Digest, ValuesSHA256: valuesDigest(values)})
	// The release is journaled: teardown uninstalls it if this fails.
	return env.Shared.attachAgents(ctx, c, h.Release, h.namespace(env), values)
}

// load loads the chart and merges the values: files, then inline values,
// then set.
func (h *HelmInstall) load(env *Env) (*helm.Chart, map[string]any, error) {
	c, err := h.loadChart(env.Shared.Info.ScenarioDir)
	if err != nil {
		return nil, nil, err
	}
	values, _, err := h.values(env.Shared.Info.ScenarioDir)
	if err != nil {
		return nil, nil, err
	}
	withAgentImage(c, values, env.Shared.Info.AgentImage)
	return c, values, nil
}

// values merges the values, files first, then inline values, then set; on
// error it names the field at fault.
func (h *HelmInstall) values(dir string) (map[string]any, string, error) {
	values := map[string]any{}
	for _, f := range h.ValuesFiles {
		v, err := readValues(resolvePath(f, dir))
		if err != nil {
			return nil, "valuesFiles", err
		}
		mergeValues(values, v)
	}
	mergeValues(values, h.Values)
	if err := helm.ParseSet(values, h.Set); err != nil {
		return nil, "set", err
	}
	return values, "", nil
}

// HelmUpgrade upgrades a release a helm.install step made. It has
// helm.install's fields but creates nothing: the release is journaled by
// the install.
type HelmUpgrade struct {
	Spec HelmInstall `yaml:",inline"`
}

// Validate checks the release's and the namespace's names.
func (h *HelmUpgrade) Validate() []FieldError { return h.Spec.Validate() }

// Run upgrades the release and waits until it is ready; on failure the
// release is rolled back to the revision it had.
func (h *HelmUpgrade) Run(ctx context.Context, env *Env) error {
	cluster, err := env.cluster("helm.upgrade")
	if err != nil {
		return err
	}
	c, values, err := h.Spec.load(env)
	if err != nil {
		return err
	}
	env.Status("upgrading " + h.Spec.Release + " to " + c.Name + " " + c.Version)
	env.Log.Info("upgrading", "release", h.Spec.Release, "namespace", h.Spec.namespace(env), "chart", c.Source, "version", c.Version)
	return cluster.Upgrade(ctx, c, h.Spec.Release, h.Spec.namespace(env), values)
}

// remote reports whether the chart comes from a repository or a registry.
func (h *HelmInstall) remote() bool { return h.Repo != "" || helm.IsOCI(h.Chart) }

// loadChart loads the step's chart: downloaded from its repository or
// registry, or as LoadChart does.
func (h *HelmInstall) loadChart(dir string) (*helm.Chart, error) {
	if h.remote() {
		return helm.Fetch(h.Chart, h.Repo, h.Version, h.Digest)
	}
	c, err := LoadChart(h.Chart, dir)
	if err == nil && h.Version != "" && strings.TrimPrefix(c.Version, "v") != strings.TrimPrefix(h.Version, "v") {
		return nil, fmt.Errorf("chart %s is version %s, not the %s the step asks for", c.Source, c.Version, h.Version)
	}
	return c, err
}

// validDigest reports whether s is sha256:<64 hex digits>.
func validDigest(s string) bool {
	hex, ok := strings.CutPrefix(s, "sha256:")
	if !ok || len(hex) != 64 {
		return false
	}
	for _, c := range hex {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// LoadChart loads a chart by name from the ones shipped with the runner, or
// from a directory (a name with a '/' or starting with '.') relative to dir.
func LoadChart(ref, dir string) (*helm.Chart, error) {
	if strings.ContainsRune(ref, '/') || strings.HasPrefix(ref, ".") {
		return helm.LoadDir(resolvePath(ref, dir))
	}
	if _, err := charts.FS.Open(ref + "/Chart.yaml"); err != nil || charts.Library(ref) {
		return nil, fmt.Errorf("no chart %q is shipped with the runner (shipped: %s); a chart directory is written as a path, e.g. ./charts/%s", ref, strings.Join(ShippedCharts(), ", "), ref)
	}
	return helm.LoadFS(charts.FS, ref, "embedded:"+ref)
}

// ShippedCharts returns the names of the installable charts embedded in
// the runner (library charts left out).
func ShippedCharts() []string {
	entries, _ := charts.FS.ReadDir(".")
	var names []string
	for _, e := range entries {
		if e.IsDir() && !charts.Library(e.Name()) {
			names = append(names, e.Name())
		}
	}
	return names
}

func resolvePath(p, dir string) string {
	if filepath.IsAbs(p) || dir == "" {
		return p
	}
	return filepath.Join(dir, p)
}

func readValues(path string) (map[string]any, error) {
	b, err := input.Read(path)
	if err != nil {
		return nil, fmt.Errorf("values file: %w", err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, fmt.Errorf("values file %s: %w", path, err)
	}
	v, err := strictyaml.Value(&root)
	if err != nil {
		var ve *strictyaml.ValueError
		errors.As(err, &ve)
		return nil, fmt.Errorf("values file %s:%d:%d: %s", path, ve.Node.Line, ve.Node.Column, ve.Message)
	}
	m, ok := v.(map[string]any)
	if !ok && v != nil {
		return nil, fmt.Errorf("values file %s:%d:%d: values must be a mapping, got %s", path, root.Content[0].Line, root.Content[0].Column, strictyaml.Describe(root.Content[0]))
	}
	return m, nil
}

// mergeValues merges src into dst as Helm merges values: mappings key by
// key, anything else replaced.
func mergeValues(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				mergeValues(dm, sm)
				continue
			}
			cp := map[string]any{}
			mergeValues(cp, sm)
			dst[k] = cp
			continue
		}
		dst[k] = v
	}
}

// undoRelease uninstalls a journaled release. In another process (runner
// cleanup) a local release has nothing left to remove: its twin died with
// the runner.
func undoRelease(ctx context.Context, env *UndoEnv, r Resource) error {
	var u releaseUndo
	if err := json.Unmarshal(r.Undo, &u); err != nil {
		return fmt.Errorf("journal entry %s: %w", r.ID(), err)
	}
	t, err := env.systems(u.Target, "release "+r.Name)
	if t == nil {
		return err
	}
	return t.Uninstall(ctx, u.Release, u.Namespace)
}

// HelmUninstall uninstalls a release.
type HelmUninstall struct {
	Release   string `yaml:"release" runner:"required" doc:"the release to remove"`
	Namespace string `yaml:"namespace" doc:"its namespace (default: the run's)"`
}

// Validate checks the namespace's name.
func (h *HelmUninstall) Validate() []FieldError {
	if h.Namespace != "" && !validNamespace(h.Namespace) {
		return []FieldError{{Field: "namespace", Message: namespaceRule}}
	}
	return nil
}

func (h *HelmUninstall) namespace(env *Env) string { return env.Shared.Namespace(h.Namespace) }

// Deletes names the release, so that teardown skips a release never made.
func (h *HelmUninstall) Deletes(env *Env) ([]Resource, error) {
	return []Resource{{Kind: "helm.install", Name: h.namespace(env) + "/" + h.Release}}, nil
}

// Run uninstalls the release.
func (h *HelmUninstall) Run(ctx context.Context, env *Env) error {
	t, err := env.Shared.Target()
	if err != nil {
		return err
	}
	env.Status("uninstalling " + h.Release)
	derr := env.Shared.detachAgents(ctx, h.Release, h.namespace(env))
	if err := t.Uninstall(ctx, h.Release, h.namespace(env)); err != nil {
		return err
	}
	return derr
}

// ChartRecord is a release a run installed, for run.json: where its chart
// came from, and a digest of the values it was given (the values
// themselves may hold secrets).
type ChartRecord struct {
	Release      string `json:"release"`
	Namespace    string `json:"namespace"`
	Chart        string `json:"chart"`
	Version      string `json:"version"`
	Source       string `json:"source"`           // embedded:<name>, a directory, <repo> <name>@<version> or oci://…@<version>
	Digest       string `json:"digest,omitempty"` // of the downloaded archive
	ValuesSHA256 string `json:"values_sha256"`    // of the values as JSON, keys sorted
}

// valuesDigest is the SHA-256 of values as JSON (encoding/json sorts map
// keys, so equal values give equal digests).
func valuesDigest(values map[string]any) string {
	b, err := json.Marshal(values)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// recordChart notes a release installed.
func (s *Shared) recordChart(r ChartRecord) {
	s.mu.Lock()
	s.charts = append(s.charts, r)
	s.mu.Unlock()
}

// Charts returns the releases the run installed, for run.json.
func (s *Shared) Charts() []ChartRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ChartRecord(nil), s.charts...)
}
