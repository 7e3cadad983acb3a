package kube

import (
	"context"
	"errors"
	"fmt"

	"github.com/perfrunner/runner/internal/helm"
)

// Upgrade upgrades the release and waits for its workloads; on failure it
// rolls back to the revision the release had.
func (t *Target) Upgrade(ctx context.Context, c *helm.Chart, release, namespace string, values map[string]any) error {
	before, err := t.helm.Get(release, namespace)
	if err != nil {
		return fmt.Errorf("upgrade %s in %s: %w", release, namespace, err)
	}
	if !t.owns(before.Labels) {
		return fmt.Errorf("upgrade %s in %s: this run did not install it (its record carries %s): a run upgrades only its own releases", release, namespace, t.ownerOf(before.Labels))
	}
	if c.HasCRDs() {
		return fmt.Errorf("chart %s has CustomResourceDefinitions in crds/: apply them with kube.apply", c.Source)
	}
	rel, err := t.helm.Upgrade(ctx, c, release, namespace, values)
	if err == nil {
		t.log.Info("release upgraded", "release", release, "namespace", namespace, "revision", rel.Revision)
		err = t.waitManifest(ctx, rel, nil, true)
	}
	if err != nil {
		t.log.Info("upgrade failed: rolling back", "release", release, "to", before.Revision, "err", err)
		if rerr := t.helm.Rollback(release, namespace, before.Revision); rerr != nil {
			err = errors.Join(err, fmt.Errorf("and rolling back to revision %d: %w", before.Revision, rerr))
		}
		return fmt.Errorf("upgrade %s in %s: %w", release, namespace, err)
	}
	return nil
}
