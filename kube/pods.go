package kube

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

// crashLoops is how many restarts in CrashLoopBackOff fail a wait at once:
// a container that crashes while what it needs starts (a Kafka client
// before its brokers) recovers after one or two.
const crashLoops = 3

// tailLines is how much of a crashed container's log an error quotes.
const tailLines = 10

// podWatch looks, for a wait, into the pods of workloads that are not
// ready: what they wait for, and whether waiting can help. It keeps the
// logs it fetched, by container and restart, so that a poll fetches each
// crash's log once.
type podWatch struct {
	t    *Target
	logs map[string]string
}

func (t *Target) newPodWatch() *podWatch { return &podWatch{t: t, logs: map[string]string{}} }

// trouble returns why the pods of workload u are not ready ("" when they
// say nothing more than the workload does), and a permanent error when
// one cannot become ready by waiting: a container in CrashLoopBackOff for
// the crashLoops-th time, quoting the end of its last log, or an image the
// node will never have.
func (w *podWatch) trouble(ctx context.Context, u *unstructured.Unstructured) (string, error) {
	pods, err := w.podsOf(ctx, u)
	if err != nil || len(pods) == 0 {
		return "", nil // the workload's own status says enough
	}
	var whys []string
	for _, p := range pods {
		if p.DeletionTimestamp != nil {
			continue
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
				whys = append(whys, fmt.Sprintf("pod %s not scheduled: %s", p.Name, oneLine(c.Message)))
			}
		}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.State.Running != nil && !cs.Ready {
				why := fmt.Sprintf("pod %s container %s running, not ready", p.Name, cs.Name)
				if w := w.lastWarning(ctx, p); w != "" {
					why += ": " + w
				}
				whys = append(whys, why)
			}
		}
		statuses := append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...)
		for _, cs := range statuses {
			waiting := cs.State.Waiting
			if waiting == nil {
				continue
			}
			where := fmt.Sprintf("pod %s container %s", p.Name, cs.Name)
			switch waiting.Reason {
			case "CrashLoopBackOff":
				why := fmt.Sprintf("%s crash-looping (%d restarts%s)", where, cs.RestartCount, lastExit(cs))
				if tail := w.lastLog(ctx, p, cs); tail != "" {
					why += "; its last log lines:\n" + tail
				}
				if cs.RestartCount >= crashLoops {
					return "", fmt.Errorf("%s", why)
				}
				whys = append(whys, why)
			case "ErrImageNeverPull", "InvalidImageName":
				return "", fmt.Errorf("%s: %s: %s", where, waiting.Reason, oneLine(waiting.Message))
			case "ContainerCreating", "PodInitializing", "":
			default:
				whys = append(whys, fmt.Sprintf("%s: %s: %s", where, waiting.Reason, oneLine(waiting.Message)))
			}
		}
	}
	return strings.Join(whys, "; "), nil
}

// podsOf lists the pods of a workload: its own selector's, or itself.
func (w *podWatch) podsOf(ctx context.Context, u *unstructured.Unstructured) ([]corev1.Pod, error) {
	core := w.t.cluster.Client.CoreV1()
	if u.GetKind() == "Pod" {
		p, err := core.Pods(u.GetNamespace()).Get(ctx, u.GetName(), metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		return []corev1.Pod{*p}, nil
	}
	raw, found, _ := unstructured.NestedMap(u.Object, "spec", "selector")
	if !found {
		return nil, nil
	}
	var ls metav1.LabelSelector
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &ls); err != nil {
		return nil, err
	}
	sel, err := metav1.LabelSelectorAsSelector(&ls)
	if err != nil || sel.Empty() || sel.String() == labels.Nothing().String() {
		return nil, err
	}
	list, err := core.Pods(u.GetNamespace()).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}

// lastLog is the end of the log of the container's instance that crashed
// last, indented for an error message; "" when the cluster cannot give it.
func (w *podWatch) lastLog(ctx context.Context, p corev1.Pod, cs corev1.ContainerStatus) string {
	key := fmt.Sprintf("%s/%s/%s/%d", p.Namespace, p.Name, cs.Name, cs.RestartCount)
	if s, ok := w.logs[key]; ok {
		return s
	}
	lines, limit := int64(tailLines), int64(8<<10)
	raw, err := w.t.cluster.Client.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{
		Container: cs.Name, Previous: true, TailLines: &lines, LimitBytes: &limit,
	}).DoRaw(ctx)
	var s string
	if err == nil {
		text := strings.TrimRight(string(raw), "\n")
		if text != "" {
			s = "    " + strings.ReplaceAll(text, "\n", "\n    ")
		}
	}
	w.logs[key] = s
	return s
}

// lastWarning is the pod's latest Warning event (a failing probe says why
// there), "" when it has none or the cluster cannot give it.
func (w *podWatch) lastWarning(ctx context.Context, p corev1.Pod) string {
	list, err := w.t.cluster.Client.CoreV1().Events(p.Namespace).List(ctx, metav1.ListOptions{
		FieldSelector: fields.Set{"involvedObject.name": p.Name, "involvedObject.uid": string(p.UID), "type": corev1.EventTypeWarning}.String(),
	})
	if err != nil {
		return ""
	}
	var last *corev1.Event
	for i := range list.Items {
		if e := &list.Items[i]; last == nil || eventTime(e).After(eventTime(last)) {
			last = e
		}
	}
	if last == nil {
		return ""
	}
	return last.Reason + ": " + oneLine(last.Message)
}

// eventTime is when an event was last seen, whichever API wrote it.
func eventTime(e *corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case e.Series != nil:
		return e.Series.LastObservedTime.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}

func lastExit(cs corev1.ContainerStatus) string {
	t := cs.LastTerminationState.Terminated
	if t == nil {
		return ""
	}
	s := fmt.Sprintf(", last exit code %d", t.ExitCode)
	if t.Reason != "" {
		s += " (" + t.Reason + ")"
	}
	return s
}
