package helm

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/cli"
	"helm.sh/helm/v3/pkg/registry"
)

// IsOCI reports whether ref names a chart in an OCI registry
// (oci://host/repository).
func IsOCI(ref string) bool { return registry.IsOCI(ref) }

// Fetch downloads a chart, as helm install does, into Helm's cache: name
// from the chart repository at repo, or the OCI reference name when repo is
// "". version pins it (a chart repository requires one here, so that a
// run never takes whatever is newest); digest, when given
// ("sha256:<hex>"), must be that of the downloaded archive. The chart's
// Source says where it came from and Digest what was downloaded.
func Fetch(name, repo, version, digest string) (*Chart, error) {
	what := name
	if repo != "" {
		what = repo + " " + name
	}
	if version == "" {
		return nil, fmt.Errorf("chart %s: give its version: a chart from a repository or a registry is pinned", what)
	}
	settings := cli.New()
	install := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	install.ChartPathOptions.RepoURL = repo
	install.ChartPathOptions.Version = version
	if IsOCI(name) {
		rc, err := registry.NewClient(registry.ClientOptCredentialsFile(settings.RegistryConfig), registry.ClientOptWriter(io.Discard))
		if err != nil {
			return nil, fmt.Errorf("chart %s: %w", what, err)
		}
		install.SetRegistryClient(rc)
	}
	path, err := install.ChartPathOptions.LocateChart(name, settings)
	if err != nil {
		return nil, fmt.Errorf("chart %s %s: %w", what, version, err)
	}
	got, err := fileDigest(path)
	if err != nil {
		return nil, fmt.Errorf("chart %s %s: %w", what, version, err)
	}
	if digest != "" && !strings.EqualFold(digest, got) {
		return nil, fmt.Errorf("chart %s %s: the archive downloaded (%s) is %s, not the %s asked for", what, version, path, got, digest)
	}
	c, err := loader.Load(path)
	if err != nil {
		return nil, fmt.Errorf("chart %s %s: %w", what, version, err)
	}
	if c.Metadata.Version != version && strings.TrimPrefix(c.Metadata.Version, "v") != strings.TrimPrefix(version, "v") {
		return nil, fmt.Errorf("chart %s: asked for version %s, got %s", what, version, c.Metadata.Version)
	}
	w := wrap(c, what+"@"+version)
	w.Digest = got
	return w, nil
}

// fileDigest is a file's SHA-256, as "sha256:<hex>".
func fileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}
