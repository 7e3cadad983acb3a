package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// fakeBinaries writes two files standing for the runner's binaries.
func fakeBinaries(t *testing.T, content string) []string {
	dir := t.TempDir()
	var args []string
	for _, arch := range []string{"amd64", "arm64"} {
		p := filepath.Join(dir, arch)
		if err := os.WriteFile(p, []byte(content+arch), 0o700); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-binary", "linux/"+arch+"="+p)
	}
	return args
}

// build runs mkimage into a fresh directory and returns it and what it printed.
func build(t *testing.T, binArgs []string) (string, string) {
	t.Helper()
	out := t.TempDir()
	var stdout bytes.Buffer
	args := append([]string{"-out", out, "-share", "../..", "-version", "v1.2.3", "-revision", "abc", "-created", "1700000000"}, binArgs...)
	if err := run(args, &stdout); err != nil {
		t.Fatal(err)
	}
	return out, stdout.String()
}

func TestTheSameSourceGivesTheSameImage(t *testing.T) {
	bins := fakeBinaries(t, "runner ")
	out1, said1 := build(t, bins)
	out2, said2 := build(t, fakeBinaries(t, "runner ")) // the same bytes, other files and times
	digest := strings.Fields(said1)[1]
	if !strings.HasPrefix(digest, "sha256:") || len(digest) != 71 {
		t.Fatalf("mkimage printed %q, want the index's sha256 digest first", said1)
	}
	if strings.Fields(said2)[1] != digest {
		t.Errorf("built twice from the same inputs: %s, then %s", digest, strings.Fields(said2)[1])
	}
	a1, _ := os.ReadFile(filepath.Join(out1, "runner.oci.tar"))
	a2, _ := os.ReadFile(filepath.Join(out2, "runner.oci.tar"))
	if len(a1) == 0 || !bytes.Equal(a1, a2) {
		t.Errorf("the OCI archives differ (%d and %d bytes)", len(a1), len(a2))
	}
	_, said3 := build(t, fakeBinaries(t, "another runner "))
	if strings.Fields(said3)[1] == digest {
		t.Errorf("another binary gave the same digest %s", digest)
	}
}

func TestTheImageRunsTheRunnerAsNonRoot(t *testing.T) {
	out, said := build(t, fakeBinaries(t, "runner "))
	p, err := layout.FromPath(filepath.Join(out, "oci"))
	if err != nil {
		t.Fatal(err)
	}
	outer, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	om, err := outer.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(om.Manifests) != 1 || om.Manifests[0].Annotations[RefName] != "runner:v1.2.3" || om.Manifests[0].Digest.String() != strings.Fields(said)[1] {
		t.Fatalf("layout index = %+v, want one image named runner:v1.2.3 with the printed digest", om.Manifests)
	}
	idx, err := outer.ImageIndex(om.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var platforms []string
	for _, d := range m.Manifests {
		platforms = append(platforms, d.Platform.String())
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Config.User != "65532:65532" || len(cfg.Config.Entrypoint) != 1 || cfg.Config.Entrypoint[0] != Entrypoint || cfg.Architecture != d.Platform.Architecture {
			t.Errorf("%s: user %q, entrypoint %q, architecture %s", d.Platform, cfg.Config.User, cfg.Config.Entrypoint, cfg.Architecture)
		}
		files := imageFiles(t, img)
		bin, ok := files[strings.TrimPrefix(Entrypoint, "/")]
		if !ok || bin.Mode != 0o755 || bin.Uid != 0 {
			t.Errorf("%s: the runner's binary is %+v, want mode 0755 owned by root (so that the runner cannot change it)", d.Platform, bin)
		}
		for _, want := range []string{"usr/share/runner/charts/perf-agents/Chart.yaml", "usr/share/runner/scenarios/channel-imc.yaml", "usr/share/runner/scenario.schema.json", "etc/passwd"} {
			if _, ok := files[want]; !ok {
				t.Errorf("%s: no %s in the image", d.Platform, want)
			}
		}
		if h := files["home/runner/"]; h == nil || h.Uid != 65532 {
			t.Errorf("%s: the user's home is %+v, want owned by 65532", d.Platform, h)
		}
	}
	if strings.Join(platforms, " ") != "linux/amd64 linux/arm64" {
		t.Errorf("platforms %v, want linux/amd64 and linux/arm64", platforms)
	}
}

// imageFiles returns the headers of every file in img's layers.
func imageFiles(t *testing.T, img v1.Image) map[string]*tar.Header {
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]*tar.Header{}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			files[h.Name] = h
		}
		rc.Close()
	}
	return files
}

func TestPushCopiesTheLayoutToARegistry(t *testing.T) {
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	out, said := build(t, fakeBinaries(t, "runner "))
	ref := strings.TrimPrefix(reg.URL, "http://") + "/perf/runner:v1.2.3"
	var stdout bytes.Buffer
	if err := run([]string{"-out", out, "-push", ref}, &stdout); err != nil {
		t.Fatal(err)
	}
	digest := strings.Fields(said)[1]
	if !strings.Contains(stdout.String(), digest) {
		t.Errorf("push printed %q, want the digest %s", stdout.String(), digest)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(r)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := idx.Digest(); got.String() != digest {
		t.Errorf("the registry holds %s, want %s", got, digest)
	}
}

func TestPushWithoutAnImageSaysSo(t *testing.T) {
	err := run([]string{"-out", t.TempDir(), "-push", "127.0.0.1:1/x:y"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "run make image first") {
		t.Errorf("err = %v, want one that says to run make image first", err)
	}
}
