package helm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/kube"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	"helm.sh/helm/v3/pkg/strvals"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/yaml"
)

// Client installs releases into the cluster a kubeconfig file and context
// name, as kubectl and the helm command resolve them ("" for their
// defaults). Every object a release renders carries Labels, and so does the
// release's own record.
type Client struct {
	Kubeconfig string
	Context    string
	Labels     map[string]string
	// Log receives Helm's debug lines; nil discards them.
	Log func(format string, args ...any)
}

// Release is an installed release.
type Release struct {
	Name      string
	Namespace string
	Revision  int
	Manifest  string            // the rendered objects, labelled
	Labels    map[string]string // the labels of the release's record
}

func wrapRelease(rel *release.Release) *Release {
	return &Release{Name: rel.Name, Namespace: rel.Namespace, Revision: rel.Version, Manifest: rel.Manifest, Labels: rel.Labels}
}

// ErrNameInUse is returned by Install for a release name that is taken.
var ErrNameInUse = errors.New("a release of that name exists already")

// HasCRDs reports whether the chart carries CustomResourceDefinitions in
// its crds/ directory, which Helm installs unlabelled and never removes.
func (c *Chart) HasCRDs() bool { return len(c.chart.CRDObjects()) > 0 }

// ErrNotFound is returned for a release that does not exist.
var ErrNotFound = errors.New("release not found")

// opTimeout bounds Helm's own work on the API server (creating, hooks,
// deleting): waiting for readiness is the caller's, on its own context.
const opTimeout = 5 * time.Minute

func (cl *Client) config(namespace string) (*action.Configuration, error) {
	flags := genericclioptions.NewConfigFlags(false)
	if cl.Kubeconfig != "" {
		flags.KubeConfig = &cl.Kubeconfig
	}
	if cl.Context != "" {
		flags.Context = &cl.Context
	}
	flags.Namespace = &namespace
	log := cl.Log
	if log == nil {
		log = func(string, ...any) {}
	}
	cfg := new(action.Configuration)
	if err := cfg.Init(flags, namespace, "secret", log); err != nil {
		return nil, err
	}
	if kc, ok := cfg.KubeClient.(*kube.Client); ok && len(cl.Labels) > 0 {
		cfg.KubeClient = labellingClient{Client: kc, labels: labeller(cl.Labels)}
	}
	return cfg, nil
}

// labellingClient labels every object Helm builds before it sends it:
// hooks too (at install, upgrade, rollback and uninstall alike), which a
// post-renderer would not see. It embeds Helm's client itself, so that the
// optional interfaces Helm asserts (waiting for deletes, propagation) stay.
type labellingClient struct {
	*kube.Client
	labels labeller
}

func (c labellingClient) Build(r io.Reader, validate bool) (kube.ResourceList, error) {
	var in bytes.Buffer
	if _, err := in.ReadFrom(r); err != nil {
		return nil, err
	}
	out, err := c.labels.Run(&in)
	if err != nil {
		return nil, err
	}
	return c.Client.Build(out, validate)
}

// Install installs c as release in namespace, which must exist. It returns
// once Helm has created the objects; it does not wait for them to be ready.
// Cancelling ctx does not stop Helm half-way (it would go on in the
// background, unseen): the creation runs to its end or to opTimeout.
func (cl *Client) Install(ctx context.Context, c *Chart, release, namespace string, values map[string]any) (*Release, error) {
	cfg, err := cl.config(namespace)
	if err != nil {
		return nil, err
	}
	in := action.NewInstall(cfg)
	in.ReleaseName = release
	in.Namespace = namespace
	in.Timeout = opTimeout
	in.Labels = cl.Labels
	if values == nil {
		values = map[string]any{}
	}
	if _, err := action.NewGet(cfg).Run(release); err == nil {
		return nil, fmt.Errorf("%w: %s in %s", ErrNameInUse, release, namespace)
	}
	rel, err := in.RunWithContext(context.WithoutCancel(ctx), c.chart, values)
	if err != nil {
		return nil, err
	}
	return wrapRelease(rel), nil
}

// Upgrade upgrades release to c with values (not reusing the earlier ones),
// as Install does.
func (cl *Client) Upgrade(ctx context.Context, c *Chart, release, namespace string, values map[string]any) (*Release, error) {
	cfg, err := cl.config(namespace)
	if err != nil {
		return nil, err
	}
	up := action.NewUpgrade(cfg)
	up.Namespace = namespace
	up.Timeout = opTimeout
	up.Labels = cl.Labels
	up.MaxHistory = 0
	if values == nil {
		values = map[string]any{}
	}
	rel, err := up.RunWithContext(context.WithoutCancel(ctx), release, c.chart, values)
	if errors.Is(err, driver.ErrNoDeployedReleases) || errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, fmt.Errorf("%w: %s in %s", ErrNotFound, release, namespace)
	}
	if err != nil {
		return nil, err
	}
	return wrapRelease(rel), nil
}

// Rollback returns release to revision.
func (cl *Client) Rollback(release, namespace string, revision int) error {
	cfg, err := cl.config(namespace)
	if err != nil {
		return err
	}
	rb := action.NewRollback(cfg)
	rb.Version = revision
	rb.Timeout = opTimeout
	return rb.Run(release)
}

// Get returns the release as it is deployed.
func (cl *Client) Get(release, namespace string) (*Release, error) {
	cfg, err := cl.config(namespace)
	if err != nil {
		return nil, err
	}
	rel, err := action.NewGet(cfg).Run(release)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, fmt.Errorf("%w: %s in %s", ErrNotFound, release, namespace)
	}
	if err != nil {
		return nil, err
	}
	return wrapRelease(rel), nil
}

// Uninstall removes release and its history and waits until its objects
// are gone, at most timeout (opTimeout when zero or more). A release that
// does not exist is no error.
func (cl *Client) Uninstall(release, namespace string, timeout time.Duration) error {
	cfg, err := cl.config(namespace)
	if err != nil {
		return err
	}
	un := action.NewUninstall(cfg)
	un.Wait = true
	un.IgnoreNotFound = true
	un.Timeout = opTimeout
	if timeout > 0 && timeout < opTimeout {
		un.Timeout = timeout
	}
	_, err = un.Run(release)
	return err
}

// ParseSet applies --set style assignments ("a.b=1,c[0]=x") to values, as
// the helm command does.
func ParseSet(values map[string]any, assignments []string) error {
	for _, a := range assignments {
		if err := strvals.ParseInto(a, values); err != nil {
			return fmt.Errorf("set %q: %w", a, err)
		}
	}
	return nil
}

// labeller adds labels to every object of a manifest, so that everything a
// release creates can be found by label. (It has a post-renderer's shape,
// but runs in labellingClient: a post-renderer would not see hooks.)
type labeller map[string]string

func (l labeller) Run(in *bytes.Buffer) (*bytes.Buffer, error) {
	if len(l) == 0 {
		return in, nil
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(in, 4096)
	var out bytes.Buffer
	for {
		var obj map[string]any
		err := dec.Decode(&obj)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("labelling rendered objects: %w", err)
		}
		if len(obj) == 0 {
			continue
		}
		u := unstructured.Unstructured{Object: obj}
		labels := u.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		for k, v := range l {
			labels[k] = v
		}
		u.SetLabels(labels)
		b, err := yaml.Marshal(u.Object)
		if err != nil {
			return nil, err
		}
		out.WriteString("---\n")
		out.Write(b)
	}
	return &out, nil
}
