package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/perfrunner/runner/internal/redact"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Access says which cluster to reach: empty fields take kubectl's defaults.
type Access struct {
	Kubeconfig string // a kubeconfig file; "": KUBECONFIG, else ~/.kube/config
	Context    string // a context of the kubeconfig; "": its current context
	Namespace  string // "": the context's namespace, else default
}

// Connection is a resolved, reachable cluster.
type Connection struct {
	Kubeconfig string // the kubeconfig file given (--kubeconfig), "" for the defaults
	Config     *rest.Config
	Client     kubernetes.Interface
	Context    string
	Server     string // the server's URL, any password in it redacted
	Namespace  string
	Version    string // the API server's gitVersion
}

// String names the cluster for people: context, server, version and
// namespace, never credentials.
func (c *Connection) String() string {
	return fmt.Sprintf("context %s, server %s (Kubernetes %s), namespace %s", c.Context, c.Server, c.Version, c.Namespace)
}

// ErrConfig is wrapped by errors about the kubeconfig or the flags, as
// opposed to a cluster that cannot be reached.
var ErrConfig = errors.New("kubeconfig")

// Connect resolves a and asks the API server for its version, within
// timeout, so that an unreachable cluster fails before anything runs.
func Connect(ctx context.Context, a Access, timeout time.Duration) (*Connection, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if a.Kubeconfig != "" {
		rules.ExplicitPath = a.Kubeconfig
	}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: a.Context}
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	raw, err := loader.RawConfig()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	name := raw.CurrentContext
	if a.Context != "" {
		name = a.Context
	}
	if name == "" {
		return nil, fmt.Errorf("%w: no context given and none is current (files: %s)", ErrConfig, strings.Join(rules.Precedence, ", "))
	}
	if _, ok := raw.Contexts[name]; !ok {
		have := make([]string, 0, len(raw.Contexts))
		for n := range raw.Contexts {
			have = append(have, n)
		}
		sort.Strings(have)
		return nil, fmt.Errorf("%w: no context %q (have: %s)", ErrConfig, name, strings.Join(have, ", "))
	}
	cfg, err := loader.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("%w: context %s: %v", ErrConfig, name, err)
	}
	ns := a.Namespace
	if ns == "" {
		if ns, _, err = loader.Namespace(); err != nil || ns == "" {
			ns = "default"
		}
	}
	cfg.Timeout = timeout
	// Sweeps list every kind of object: kubectl's rates, not client-go's
	// default of 5 a second. Deprecation warnings go nowhere.
	cfg.QPS, cfg.Burst = 50, 100
	cfg.WarningHandler = rest.NoWarnings{}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: context %s: %v", ErrConfig, name, err)
	}
	server, password := redact.URL(cfg.Host)
	c := &Connection{Kubeconfig: a.Kubeconfig, Config: cfg, Client: client, Context: name, Server: server, Namespace: ns}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	v, err := versionOf(ctx, client)
	if err != nil {
		msg := err.Error()
		if password != "" {
			msg = strings.ReplaceAll(msg, password, redacted)
		}
		return nil, fmt.Errorf("cannot reach the API server %s of context %s within %s: %s", server, name, timeout, msg)
	}
	c.Version = v
	return c, nil
}

// redacted stands for a password that is never shown.
const redacted = "xxxxx"

// versionOf asks the API server for its version.
func versionOf(ctx context.Context, client kubernetes.Interface) (string, error) {
	body, err := client.Discovery().RESTClient().Get().AbsPath("/version").Do(ctx).Raw()
	if err != nil {
		return "", err
	}
	var v struct {
		GitVersion string `json:"gitVersion"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return "", err
	}
	return v.GitVersion, nil
}

// Contexts returns the names of the contexts of the kubeconfig a would
// load (kubeconfig, else KUBECONFIG, else ~/.kube/config), sorted, for
// shell completion.
func Contexts(kubeconfig string) ([]string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	raw, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).RawConfig()
	if err != nil {
		return nil, err
	}
	return slices.Sorted(maps.Keys(raw.Contexts)), nil
}
