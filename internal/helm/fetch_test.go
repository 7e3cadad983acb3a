package helm_test

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/repo"

	"github.com/perfrunner/runner/internal/helm"
)

// A chart repository on loopback holding the perf-agents chart, packaged
// as helm package does, and its index; Helm's home in a directory of the
// test's own. It returns the repository's URL, the chart's version and the
// archive's digest.
func chartRepository(t *testing.T) (url, version, digest string) {
	t.Helper()
	for _, v := range []string{"HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"} {
		t.Setenv(v, t.TempDir())
	}
	c, err := loader.LoadDir(filepath.Join("..", "..", "charts", "perf-agents"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	archive, err := chartutil.Save(c, dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	index, err := repo.IndexDirectory(dir, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if err := index.WriteFile(filepath.Join(dir, "index.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	return srv.URL, c.Metadata.Version, "sha256:" + hex.EncodeToString(sum[:])
}

// A chart is fetched from a repository by name and version, and its
// digest checked; an unpinned chart, a wrong version and a wrong digest
// are refused with what was found.
func TestFetchFromAChartRepository(t *testing.T) {
	url, version, digest := chartRepository(t)
	c, err := helm.Fetch("perf-agents", url, version, digest)
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "perf-agents" || c.Version != version || c.Digest != digest || c.Source != url+" perf-agents@"+version {
		t.Errorf("fetched %s %s from %s, digest %s", c.Name, c.Version, c.Source, c.Digest)
	}
	if _, err := c.Render(t.Context(), "r", "ns", map[string]any{"name": "perf"}); err != nil {
		t.Errorf("the fetched chart does not render: %v", err)
	}
	for _, tt := range []struct{ version, digest, want string }{
		{"", "", "give its version"},
		{"9.9.9", "", "9.9.9"},
		{version, "sha256:" + strings.Repeat("0", 64), "is " + digest + ", not the sha256:000"},
	} {
		if _, err := helm.Fetch("perf-agents", url, tt.version, tt.digest); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Fetch version %q digest %q: %v, want an error with %q", tt.version, tt.digest, err, tt.want)
		}
	}
}
