package kube

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// isCustom reports whether apiVersion is of a group Kubernetes does not
// define itself: a custom resource, which reports readiness by a Ready
// condition if at all.
func isCustom(apiVersion string) bool {
	group, _, ok := strings.Cut(apiVersion, "/")
	if !ok {
		return false // the core group
	}
	return strings.Contains(group, ".") && !strings.HasSuffix(group, ".k8s.io")
}

func isWorkload(kind string) bool {
	switch kind {
	case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Pod", "Job":
		return true
	}
	return false
}

// readiness says whether an object is ready, and if not, why. Workloads
// follow their own status, as kubectl rollout status reads it; any other
// object with a Ready condition needs it True; an object without one is
// ready once it exists, unless needReady (a custom resource named in
// kube.wait must say Ready). A failed Job or Pod is a permanent error.
func readiness(u *unstructured.Unstructured, needReady bool) (bool, string, error) {
	gen := u.GetGeneration()
	// A status that says which generation it saw must have seen this one.
	observed, has, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	stale := has && observed < gen
	want := func(path ...string) int64 {
		v, found, _ := unstructured.NestedInt64(u.Object, path...)
		if !found {
			return 1
		}
		return v
	}
	have := func(path ...string) int64 { v, _, _ := unstructured.NestedInt64(u.Object, path...); return v }
	str := func(path ...string) string { v, _, _ := unstructured.NestedString(u.Object, path...); return v }
	conds := conditions(u)
	switch u.GetKind() {
	case "Deployment":
		n := want("spec", "replicas")
		updated, total, available := have("status", "updatedReplicas"), have("status", "replicas"), have("status", "availableReplicas")
		switch {
		case stale:
			return false, "its controller has not seen the latest spec yet", nil
		case conds["Progressing"].reason == "ProgressDeadlineExceeded":
			return false, "", fmt.Errorf("rollout stuck: %s", conds)
		case updated < n || total > updated || available < n:
			return false, fmt.Sprintf("%d of %d replicas available, %d updated, %d in all; %s", available, n, updated, total, conds), nil
		}
		return true, "", nil
	case "StatefulSet":
		n := want("spec", "replicas")
		ready, updated := have("status", "readyReplicas"), have("status", "updatedReplicas")
		rolling := str("spec", "updateStrategy", "type") != "OnDelete"
		partition, _, _ := unstructured.NestedInt64(u.Object, "spec", "updateStrategy", "rollingUpdate", "partition")
		switch {
		case !has && gen > 0:
			return false, "its controller has not seen it yet", nil
		case stale:
			return false, "its controller has not seen the latest spec yet", nil
		case ready < n || rolling && partition > 0 && updated < n-partition:
			return false, fmt.Sprintf("%d of %d replicas ready, %d updated (partition %d); %s", ready, n, updated, partition, conds), nil
		case rolling && partition == 0 && (updated < n || str("status", "currentRevision") != str("status", "updateRevision")):
			return false, fmt.Sprintf("%d of %d replicas ready, %d updated; %s", ready, n, updated, conds), nil
		}
		return true, "", nil
	case "ReplicaSet":
		n := want("spec", "replicas")
		if stale || have("status", "readyReplicas") < n {
			return false, fmt.Sprintf("%d of %d replicas ready; %s", have("status", "readyReplicas"), n, conds), nil
		}
		return true, "", nil
	case "DaemonSet":
		n := have("status", "desiredNumberScheduled")
		switch {
		case !has && gen > 0:
			return false, "its controller has not seen it yet", nil
		case stale:
			return false, "its controller has not seen the latest spec yet", nil
		case have("status", "numberAvailable") < n || str("spec", "updateStrategy", "type") != "OnDelete" && have("status", "updatedNumberScheduled") < n:
			return false, fmt.Sprintf("%d of %d pods available, %d updated", have("status", "numberAvailable"), n, have("status", "updatedNumberScheduled")), nil
		}
		return true, "", nil
	case "Pod":
		phase := str("status", "phase")
		if phase == "Succeeded" || conds["Ready"].status == "True" {
			return true, "", nil
		}
		if phase == "Failed" {
			return false, "", fmt.Errorf("pod failed: %s", conds)
		}
		return false, fmt.Sprintf("phase %s; %s", phase, conds), nil
	case "Job":
		if conds["Complete"].status == "True" {
			return true, "", nil
		}
		if conds["Failed"].status == "True" {
			return false, "", fmt.Errorf("job failed: %s", conds)
		}
		return false, fmt.Sprintf("%d succeeded, %d active; %s", have("status", "succeeded"), have("status", "active"), conds), nil
	}
	ready, hasReady := conds["Ready"]
	switch {
	case hasReady && ready.status == "True" && !stale:
		return true, "", nil
	case hasReady:
		return false, conds.String(), nil
	case !needReady:
		return true, "", nil
	case len(conds) == 0:
		return false, "no status conditions yet", nil
	}
	return false, "no Ready condition yet; " + conds.String(), nil
}

type condition struct{ status, reason, message string }

type conditionSet map[string]condition

func (cs conditionSet) String() string {
	if len(cs) == 0 {
		return "no conditions"
	}
	names := make([]string, 0, len(cs))
	for n := range cs {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		c := cs[n]
		parts[i] = n + "=" + c.status
		if c.reason != "" || c.message != "" {
			parts[i] += " (" + strings.TrimSpace(c.reason+": "+c.message) + ")"
		}
	}
	return "conditions " + strings.Join(parts, ", ")
}

func conditions(u *unstructured.Unstructured) conditionSet {
	list, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	cs := conditionSet{}
	for _, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			continue
		}
		str := func(k string) string { s, _ := m[k].(string); return s }
		if t := str("type"); t != "" {
			cs[t] = condition{status: str("status"), reason: str("reason"), message: str("message")}
		}
	}
	return cs
}
