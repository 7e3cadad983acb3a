package kube

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func kubeconfig(t *testing.T, server string) string {
	t.Helper()
	src := `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "` + server + `", insecure-skip-tls-verify: true}
users:
- name: u
  user: {token: secret-token-that-must-not-show}
contexts:
- name: one
  context: {cluster: c, user: u, namespace: perf}
- name: two
  context: {cluster: c, user: u}
current-context: one
`
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConnectRefusesBadConfig(t *testing.T) {
	_, err := Connect(context.Background(), Access{Kubeconfig: "/nonexistent/kubeconfig"}, time.Second)
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "/nonexistent/kubeconfig") {
		t.Errorf("missing file: %v", err)
	}
	path := kubeconfig(t, "https://127.0.0.1:1")
	_, err = Connect(context.Background(), Access{Kubeconfig: path, Context: "three"}, time.Second)
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), `no context "three" (have: one, two)`) {
		t.Errorf("unknown context: %v", err)
	}
}

// An unreachable server fails fast, names the server and the context, and
// never shows the credentials.
func TestConnectUnreachable(t *testing.T) {
	path := kubeconfig(t, "https://127.0.0.1:1")
	start := time.Now()
	_, err := Connect(context.Background(), Access{Kubeconfig: path}, 2*time.Second)
	if err == nil || errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "cannot reach the API server https://127.0.0.1:1 of context one") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "secret-token") {
		t.Errorf("the error shows the token: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %s", took)
	}
}

// The namespace comes from -n, else the context, else default; the version
// from the server.
func TestConnectResolves(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/version" || r.Header.Get("Authorization") != "Bearer secret-token-that-must-not-show" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte(`{"gitVersion":"v1.37.2"}`))
	}))
	defer srv.Close()
	path := kubeconfig(t, srv.URL)
	for _, c := range []struct {
		access Access
		ctx    string
		ns     string
	}{
		{Access{Kubeconfig: path}, "one", "perf"},
		{Access{Kubeconfig: path, Context: "two"}, "two", "default"},
		{Access{Kubeconfig: path, Context: "two", Namespace: "bench"}, "two", "bench"},
	} {
		cl, err := Connect(context.Background(), c.access, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if cl.Context != c.ctx || cl.Namespace != c.ns || cl.Version != "v1.37.2" || cl.Server != srv.URL {
			t.Errorf("%+v: got %s", c.access, cl)
		}
		if strings.Contains(cl.String(), "secret") {
			t.Errorf("String shows the token: %s", cl)
		}
	}
	t.Setenv("KUBECONFIG", path)
	if cl, err := Connect(context.Background(), Access{}, 5*time.Second); err != nil || cl.Context != "one" {
		t.Errorf("from KUBECONFIG: %v, %v", cl, err)
	}
}

// A password in the server's URL is never shown: not in the connection's
// server (printed, and stored in run.json), not in its String, not in the
// error when the server cannot be reached.
func TestServerPasswordIsRedacted(t *testing.T) {
	path := kubeconfig(t, "https://admin:hunter2-must-not-show@127.0.0.1:1")
	_, err := Connect(context.Background(), Access{Kubeconfig: path}, time.Second)
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "https://admin:xxxxx@127.0.0.1:1") {
		t.Errorf("unreachable: %v", err)
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"gitVersion":"v1.37.2"}`))
	}))
	defer srv.Close()
	withPassword := strings.Replace(srv.URL, "https://", "https://admin:hunter2-must-not-show@", 1)
	cl, err := Connect(context.Background(), Access{Kubeconfig: kubeconfig(t, withPassword)}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(cl.Server+cl.String(), "hunter2") || cl.Server != strings.Replace(srv.URL, "https://", "https://admin:xxxxx@", 1) {
		t.Errorf("server %q, String %q", cl.Server, cl)
	}
}
