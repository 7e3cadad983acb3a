package steps

import (
	"context"
	"fmt"
	"strings"
)

func init() {
	Register(Kind{
		Name:      "kube.wait",
		Doc:       "Waits until a release is ready: on local, its twin serves; the step's timeout bounds the wait.",
		New:       func() Spec { return new(KubeWait) },
		Retryable: true,
	})
}

// KubeWait waits for a release and, optionally, named objects of it.
type KubeWait struct {
	Release   string   `yaml:"release" runner:"required" doc:"the release to wait for"`
	Namespace string   `yaml:"namespace" doc:"its namespace (default: default)"`
	For       []string `yaml:"for" doc:"objects of the release that must be ready, as kind/name (e.g. inmemorychannel/perf); the release must render each"`
}

// Validate checks the objects' form.
func (k *KubeWait) Validate() []FieldError {
	var errs []FieldError
	if k.Namespace != "" && !validNamespace(k.Namespace) {
		errs = append(errs, FieldError{Field: "namespace", Message: namespaceRule})
	}
	for _, o := range k.For {
		kind, name, ok := strings.Cut(o, "/")
		if !ok || kind == "" || name == "" || strings.Contains(name, "/") {
			errs = append(errs, FieldError{Field: "for", Message: fmt.Sprintf("%q is not kind/name", o)})
		}
	}
	return errs
}

// Run waits.
func (k *KubeWait) Run(ctx context.Context, env *Env) error {
	if env.Shared == nil {
		return fmt.Errorf("kube.wait needs a run")
	}
	target, err := env.Shared.Target()
	if err != nil {
		return err
	}
	ns := k.Namespace
	if ns == "" {
		ns = defaultNamespace
	}
	env.Status("waiting for " + k.Release)
	return target.Wait(ctx, k.Release, ns, k.For)
}
