package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's user: not root, and not any user of a common base image.
const (
	uid  = 65532
	user = "runner"
	home = "/home/runner"
	// Entrypoint is where the runner's binary lives in the image.
	Entrypoint = "/usr/local/bin/runner"
	// ShareDir holds the charts, scenarios and schemas.
	ShareDir = "/usr/share/runner"
)

// Spec is what one image is built from.
type Spec struct {
	Binaries map[string]string // platform ("linux/amd64") → the runner's static binary
	Share    string            // the source tree: charts/, scenarios/ and *.schema.json are copied from it
	Version  string            // the runner's version, as a label
	Revision string            // the source's commit, as a label
	Created  time.Time         // every timestamp in the image
}

// Build returns the multi-platform index of the runner's image. The same
// spec gives the same digest: every file's time, owner and order is fixed,
// and nothing of the machine that builds it enters.
func Build(s Spec) (v1.ImageIndex, error) {
	if len(s.Binaries) == 0 {
		return nil, fmt.Errorf("no binaries to build an image from")
	}
	base, err := layer(s.Created, baseFiles())
	if err != nil {
		return nil, err
	}
	files, err := shareFiles(s.Share)
	if err != nil {
		return nil, err
	}
	share, err := layer(s.Created, files)
	if err != nil {
		return nil, err
	}
	platforms := make([]string, 0, len(s.Binaries))
	for p := range s.Binaries {
		platforms = append(platforms, p)
	}
	sort.Strings(platforms)
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	var adds []mutate.IndexAddendum
	for _, p := range platforms {
		os, arch, ok := strings.Cut(p, "/")
		if !ok || os != "linux" || arch == "" {
			return nil, fmt.Errorf("platform %q: not linux/<arch>", p)
		}
		bin, err := readFile(s.Binaries[p], Entrypoint, 0o755)
		if err != nil {
			return nil, err
		}
		binLayer, err := layer(s.Created, []file{bin})
		if err != nil {
			return nil, err
		}
		img, err := image(s, arch, []v1.Layer{base, share, binLayer})
		if err != nil {
			return nil, fmt.Errorf("platform %s: %w", p, err)
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			MediaType: types.OCIManifestSchema1,
			Platform:  &v1.Platform{OS: os, Architecture: arch},
		}})
	}
	return mutate.AppendManifests(idx, adds...), nil
}

// image is one platform's image of layers.
func image(s Spec, arch string, layers []v1.Layer) (v1.Image, error) {
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	what := []string{"users and directories", "charts, scenarios and schemas", "the runner"}
	for i, l := range layers {
		var err error
		img, err = mutate.Append(img, mutate.Addendum{Layer: l, History: v1.History{Created: v1.Time{Time: s.Created}, CreatedBy: "runner mkimage: " + what[i]}})
		if err != nil {
			return nil, err
		}
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", arch
	cfg.Created = v1.Time{Time: s.Created}
	cfg.Config = v1.Config{
		User:       fmt.Sprintf("%d:%d", uid, uid),
		Entrypoint: []string{Entrypoint},
		WorkingDir: home,
		Env:        []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + home},
		Labels: map[string]string{
			"org.opencontainers.image.title":    "runner",
			"org.opencontainers.image.version":  s.Version,
			"org.opencontainers.image.revision": s.Revision,
		},
	}
	return mutate.ConfigFile(img, cfg)
}

// file is one entry of a layer.
type file struct {
	name string // absolute, in the image
	mode int64  // with fs.ModeDir for a directory
	uid  int
	data []byte
}

// baseFiles are what a static binary run as a non-root user needs: the
// user, its home, and a /tmp.
func baseFiles() []file {
	return []file{
		{name: "/etc", mode: 0o755 | int64(fs.ModeDir)},
		{name: "/etc/passwd", mode: 0o644, data: []byte(fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\n%s:x:%d:%d:%s:%s:/sbin/nologin\n", user, uid, uid, user, home))},
		{name: "/etc/group", mode: 0o644, data: []byte(fmt.Sprintf("root:x:0:\n%s:x:%d:\n", user, uid))},
		{name: "/home", mode: 0o755 | int64(fs.ModeDir)},
		{name: home, mode: 0o755 | int64(fs.ModeDir), uid: uid},
		{name: "/tmp", mode: 0o1777 | int64(fs.ModeDir)},
	}
}

// shareFiles reads charts/, scenarios/ and the schemas of the source tree
// dir into ShareDir.
func shareFiles(dir string) ([]file, error) {
	files := []file{{name: "/usr", mode: 0o755 | int64(fs.ModeDir)}, {name: "/usr/share", mode: 0o755 | int64(fs.ModeDir)}, {name: ShareDir, mode: 0o755 | int64(fs.ModeDir)}}
	for _, sub := range []string{"charts", "scenarios"} {
		err := filepath.WalkDir(filepath.Join(dir, sub), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			name := path.Join(ShareDir, filepath.ToSlash(rel))
			switch {
			case d.IsDir():
				files = append(files, file{name: name, mode: 0o755 | int64(fs.ModeDir)})
			case d.Type().IsRegular() && !strings.HasSuffix(p, ".go"):
				f, err := readFile(p, name, 0o644)
				if err != nil {
					return err
				}
				files = append(files, f)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	schemas, err := filepath.Glob(filepath.Join(dir, "*.schema.json"))
	if err != nil {
		return nil, err
	}
	for _, p := range schemas {
		f, err := readFile(p, path.Join(ShareDir, filepath.Base(p)), 0o644)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	return files, nil
}

func readFile(p, name string, mode int64) (file, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return file{}, err
	}
	return file{name: name, mode: mode, data: data}, nil
}

// layer is a gzipped tar of files, sorted by name, every entry with the
// time created and no owner names.
func layer(created time.Time, files []file) (v1.Layer, error) {
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{
			Name:    strings.TrimPrefix(f.name, "/"),
			Mode:    f.mode &^ int64(fs.ModeDir),
			Uid:     f.uid,
			Gid:     f.uid,
			ModTime: created,
			Format:  tar.FormatPAX,
		}
		if f.mode&int64(fs.ModeDir) != 0 {
			h.Typeflag, h.Name = tar.TypeDir, h.Name+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
}
