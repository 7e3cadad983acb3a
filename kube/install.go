package kube

import (
	"context"
	"errors"
	"fmt"

	"github.com/perfrunner/runner/internal/helm"
	"github.com/perfrunner/runner/target"
)

// Install installs the chart and waits until its workloads are ready
// (Deployments, StatefulSets, DaemonSets, ReplicaSets, Pods, Jobs), as
// helm install --wait --wait-for-jobs does, within ctx. On failure the
// release is uninstalled at once (atomic): an install either succeeds
// ready or leaves nothing.
func (t *Target) Install(ctx context.Context, c *helm.Chart, release, namespace string, values map[string]any) error {
	if c.HasCRDs() {
		return fmt.Errorf("chart %s has CustomResourceDefinitions in crds/, which Helm installs unlabelled and never removes: apply them with kube.apply, which journals and removes them: %w", c.Source, target.ErrNotCreated)
	}
	if err := t.ensureNamespace(ctx, namespace); err != nil {
		return err
	}
	rel, err := t.helm.Install(ctx, c, release, namespace, values)
	if errors.Is(err, helm.ErrNameInUse) {
		// Not this run's: teardown must leave it alone.
		return fmt.Errorf("install %s: %w: %w", release, err, target.ErrNotCreated)
	}
	if err == nil {
		t.log.Info("release installed", "release", release, "namespace", namespace, "revision", rel.Revision)
		err = t.waitManifest(ctx, rel, nil, true)
	}
	if err != nil {
		t.log.Info("install failed: uninstalling", "release", release, "err", err)
		if uerr := t.Uninstall(context.WithoutCancel(ctx), release, namespace); uerr != nil {
			err = errors.Join(err, fmt.Errorf("and uninstalling it after: %w", uerr))
		}
		return fmt.Errorf("install %s in %s: %w", release, namespace, err)
	}
	return nil
}
