// Command nodeimage makes the tarballs that `ctr images import` loads into
// the real node's containerd: no registry is reachable here, so the node's
// images are built rather than pulled. With -binary it makes a one-layer
// image of a static binary (the pause sandbox, the Knative commands), with
// -kodata the data ko would put beside it (in /var/run/ko, named by
// KO_DATA_PATH, as Knative's commands read it); with -archive it copies an
// OCI archive (make image's) naming its image REF in full, as containerd
// and the CRI both read it (the archive names it by a short "runner:v",
// which the CRI takes for docker.io/library/runner and then cannot find).
// The copy keeps every blob, so the image keeps its digest.
//
//	nodeimage -binary bin/pause -name registry.k8s.io/pause:3.10 -out bin/pause.tar
//	nodeimage -binary bin/operator -kodata DIR -name runner.local/knative/operator:v1 -out op.tar
//	nodeimage -archive bin/image/runner.oci.tar -name ghcr.io/o/runner:v -out runner.tar
package main

import (
	"archive/tar"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func main() {
	binary := flag.String("binary", "", "the static binary, installed as /<its name> and made the entrypoint")
	kodata := flag.String("kodata", "", "with -binary: a directory to put in /var/run/ko, named by KO_DATA_PATH")
	archive := flag.String("archive", "", "an OCI archive to copy under -name instead")
	ref := flag.String("name", "", "the image's reference, as the node will ask for it")
	out := flag.String("out", "", "the tarball to write")
	flag.Parse()
	if (*binary == "") == (*archive == "") || *ref == "" || *out == "" || *kodata != "" && *binary == "" {
		fmt.Fprintln(os.Stderr, "usage: nodeimage -binary FILE [-kodata DIR]|-archive FILE -name REF -out FILE")
		os.Exit(2)
	}
	run := func(in, ref, out string) error { return build(in, *kodata, ref, out) }
	if *archive != "" {
		run = rename
	}
	if err := run(cmp.Or(*binary, *archive), *ref, *out); err != nil {
		fmt.Fprintln(os.Stderr, "nodeimage:", err)
		os.Exit(1)
	}
}

// koData is where ko puts a command's data, and the variable that names it.
const koData = "/var/run/ko"

func build(binary, kodata, ref, out string) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return err
	}
	body, err := os.ReadFile(binary)
	if err != nil {
		return err
	}
	entry := "/" + path.Base(binary)
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	if err := tw.WriteHeader(&tar.Header{Name: entry[1:], Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := tw.Write(body); err != nil {
		return err
	}
	env := []string(nil)
	if kodata != "" {
		if err := addTree(tw, kodata, koData[1:]); err != nil {
			return err
		}
		env = append(env, "KO_DATA_PATH="+koData)
	}
	if err := tw.Close(); err != nil {
		return err
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layer.Bytes())), nil
	})
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config = v1.Config{Entrypoint: []string{entry}, User: "65535:65535", Env: env}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	return tarball.WriteToFile(out, tag, img)
}

// addTree writes the directory tree dir to tw under prefix, its parents
// first, readable by anyone (the module cache keeps files read-only).
func addTree(tw *tar.Writer, dir, prefix string) error {
	var parents []string
	for p := prefix; p != "."; p = path.Dir(p) {
		parents = append([]string{p}, parents...)
	}
	for _, p := range parents[:len(parents)-1] {
		if err := tw.WriteHeader(&tar.Header{Name: p + "/", Mode: 0o755, Typeflag: tar.TypeDir}); err != nil {
			return err
		}
	}
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		name := path.Join(prefix, filepath.ToSlash(rel))
		if d.IsDir() {
			return tw.WriteHeader(&tar.Header{Name: name + "/", Mode: 0o755, Typeflag: tar.TypeDir})
		}
		body, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err = tw.Write(body)
		return err
	})
}

// rename copies the OCI archive in to out, every manifest of its index
// annotated with ref as containerd's image name.
func rename(in, ref, out string) (err error) {
	tag, err := name.NewTag(ref)
	if err != nil {
		return err
	}
	src, err := os.Open(in)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.Create(out)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := dst.Close(); err == nil {
			err = cerr
		}
	}()
	tr, tw := tar.NewReader(src), tar.NewWriter(dst)
	named := false
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", in, err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", in, h.Name, err)
		}
		if path.Clean(h.Name) == "index.json" {
			if body, err = annotate(body, tag); err != nil {
				return fmt.Errorf("%s: index.json: %w", in, err)
			}
			h.Size = int64(len(body))
			named = true
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := tw.Write(body); err != nil {
			return err
		}
	}
	if !named {
		return fmt.Errorf("%s: no index.json: not an OCI archive", in)
	}
	return tw.Close()
}

// annotate names each manifest of an OCI index tag: in full for
// containerd, by its tag alone as the OCI layout convention has it.
// Fields it does not know are kept.
func annotate(index []byte, tag name.Tag) ([]byte, error) {
	var idx map[string]any
	if err := json.Unmarshal(index, &idx); err != nil {
		return nil, err
	}
	manifests, _ := idx["manifests"].([]any)
	if len(manifests) == 0 {
		return nil, errors.New("no manifests")
	}
	for _, m := range manifests {
		desc, ok := m.(map[string]any)
		if !ok {
			return nil, errors.New("a manifest is not an object")
		}
		ann, _ := desc["annotations"].(map[string]any)
		if ann == nil {
			ann = map[string]any{}
		}
		ann["io.containerd.image.name"] = tag.Name()
		ann["org.opencontainers.image.ref.name"] = tag.TagStr()
		desc["annotations"] = ann
	}
	return json.Marshal(idx)
}
