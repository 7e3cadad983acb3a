// Command mkimage builds the runner's OCI image from static binaries of the
// runner, with no container engine: one image per platform, a non-root
// user, the runner as entrypoint and the charts, scenarios and schemas in
// /usr/share/runner, under one multi-platform index. It writes the index as
// an OCI layout directory and as an OCI archive (the layout in one tar, as
// `ctr images import` and `skopeo copy oci-archive:` read it), and prints
// its digest; with -push it copies that layout to a registry. `make image`
// and `make image-push` run it.
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// RefName is the annotation that names an index in an OCI layout.
const RefName = "org.opencontainers.image.ref.name"

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

// binaries is the repeated -binary flag.
type binaries map[string]string

func (b binaries) String() string { return fmt.Sprint(map[string]string(b)) }
func (b binaries) Set(s string) error {
	p, file, ok := strings.Cut(s, "=")
	if !ok || p == "" || file == "" {
		return fmt.Errorf("%q: want <os>/<arch>=<file>", s)
	}
	b[p] = file
	return nil
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("mkimage", flag.ContinueOnError)
	bins := binaries{}
	fs.Var(bins, "binary", "a platform's static runner binary, as linux/amd64=path (repeated)")
	out := fs.String("out", "bin/image", "directory to write oci/ (the layout) and runner.oci.tar to")
	share := fs.String("share", ".", "the source tree, whose charts/, scenarios/ and *.schema.json go into the image")
	version := fs.String("version", "dev", "the runner's version, as the image's label and its name in the layout")
	revision := fs.String("revision", "", "the source's commit, as the image's label")
	created := fs.String("created", "0", "every timestamp in the image, in seconds since 1970 (SOURCE_DATE_EPOCH)")
	push := fs.String("push", "", "copy the layout in -out to this reference (registry/repository:tag) instead of building")
	if err := fs.Parse(args); err != nil {
		return err
	}
	layoutDir := filepath.Join(*out, "oci")
	if *push != "" {
		digest, err := pushLayout(layoutDir, *push)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "pushed %s to %s\n", digest, *push)
		return nil
	}
	secs, err := strconv.ParseInt(*created, 10, 64)
	if err != nil {
		return fmt.Errorf("-created %q: not seconds since 1970", *created)
	}
	idx, err := Build(Spec{Binaries: bins, Share: *share, Version: *version, Revision: *revision, Created: time.Unix(secs, 0).UTC()})
	if err != nil {
		return err
	}
	digest, err := writeLayout(layoutDir, idx, "runner:"+*version)
	if err != nil {
		return err
	}
	archive := filepath.Join(*out, "runner.oci.tar")
	if err := writeArchive(layoutDir, archive, time.Unix(secs, 0).UTC()); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "image %s\n  OCI layout: %s\n  OCI archive: %s\n", digest, layoutDir, archive)
	return nil
}

// writeLayout writes idx as the only index of a fresh OCI layout in dir,
// named ref, and returns its digest.
func writeLayout(dir string, idx v1.ImageIndex, ref string) (v1.Hash, error) {
	digest, err := idx.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	if err := os.RemoveAll(dir); err != nil {
		return v1.Hash{}, err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{RefName: ref})); err != nil {
		return v1.Hash{}, err
	}
	return digest, nil
}

// writeArchive writes the layout in dir as one tar, its entries sorted and
// timed created.
func writeArchive(dir, archive string, created time.Time) error {
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && p != dir {
			names = append(names, p)
		}
		return err
	})
	if err != nil {
		return err
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range names {
		info, err := os.Stat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		h := &tar.Header{Name: filepath.ToSlash(rel), Mode: 0o644, ModTime: created, Typeflag: tar.TypeReg, Size: info.Size(), Format: tar.FormatPAX}
		if info.IsDir() {
			h.Name, h.Mode, h.Typeflag, h.Size = h.Name+"/", 0o755, tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if !info.IsDir() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if _, err := tw.Write(data); err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	tmp := archive + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, archive)
}

// pushLayout copies the one index of the layout in dir to ref, with the
// credentials docker and podman keep, and returns its digest.
func pushLayout(dir, ref string) (v1.Hash, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("%s: no image to push (run make image first): %w", dir, err)
	}
	outer, err := p.ImageIndex()
	if err != nil {
		return v1.Hash{}, err
	}
	m, err := outer.IndexManifest()
	if err != nil {
		return v1.Hash{}, err
	}
	if len(m.Manifests) != 1 {
		return v1.Hash{}, fmt.Errorf("%s holds %d images, want 1", dir, len(m.Manifests))
	}
	idx, err := outer.ImageIndex(m.Manifests[0].Digest)
	if err != nil {
		return v1.Hash{}, err
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("IMAGE=%s: %w", ref, err)
	}
	if err := remote.WriteIndex(r, idx, remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
		return v1.Hash{}, fmt.Errorf("push %s: %w", ref, err)
	}
	return idx.Digest()
}
