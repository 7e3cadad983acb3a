package kube

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/perfrunner/runner/internal/helm"
)

// Uninstall uninstalls the release and waits until its objects are gone,
// until ctx's deadline. Helm has no context here: the deletes are issued
// whatever happens, and only the wait is bounded.
func (t *Target) Uninstall(ctx context.Context, release, namespace string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("uninstall %s in %s: %w", release, namespace, context.Cause(ctx))
	}
	rel, err := t.helm.Get(release, namespace)
	switch {
	case errors.Is(err, helm.ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("uninstall %s in %s: %w", release, namespace, err)
	case !t.owns(rel.Labels):
		// Installed by someone else between this run's journal entry and
		// its install: not this run's to remove.
		t.log.Warn("release left alone: not this run's", "release", release, "namespace", namespace, "owner", t.ownerOf(rel.Labels))
		return nil
	}
	var timeout time.Duration
	if d, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(d), time.Second)
	}
	if err := t.helm.Uninstall(release, namespace, timeout); err != nil {
		return fmt.Errorf("uninstall %s in %s: %w", release, namespace, err)
	}
	t.log.Info("release uninstalled", "release", release, "namespace", namespace)
	t.releaseSinks(release, namespace)
	return nil
}
