package target

import (
	"fmt"
	"strconv"
	"strings"
)

// SinkAnnotation, on an object a chart renders, names the sink it is
// (e.g. channel/perf). On a cluster, once kube.wait has seen the object
// ready, the sink is its status.address.url, the address Knative gives it,
// which agents inside the cluster send to.
const SinkAnnotation = "runner.perf/sink"

// SinkKind is the first part of a sink's name.
type SinkKind string

// The kinds of sink. Steps claim the first three by name as they start what
// serves them; the target resolves the others.
const (
	SinkReceiver SinkKind = "receiver" // receiver/<name>: a measuring receiver
	SinkChannel  SinkKind = "channel"  // channel/<name>: a channel's ingress
	SinkBroker   SinkKind = "broker"   // broker/<name>: a broker's ingress
	SinkKafka    SinkKind = "kafka"    // kafka/<topic>: records produced to a topic
	SinkService  SinkKind = "service"  // service/<name>:<port>[/path]: a Service inside a cluster
	SinkPod      SinkKind = "pod"      // pod/<name>:<port>[/path]: a pod inside a cluster
)

// Claimed reports whether sinks of kind k are named by the step that
// starts what serves them, rather than resolved by the target.
func (k SinkKind) Claimed() bool {
	return k == SinkReceiver || k == SinkChannel || k == SinkBroker
}

// Sink is a sink's name, parsed: kind/name, or kind/name:port[/path] for a
// Service or a pod.
type Sink struct {
	Kind SinkKind
	Name string // the object's name, or the topic
	Port int    // service and pod only
	Path string // service and pod only: the URL's path, without its leading '/'
}

// SinkName returns the name of the sink kind/name.
func SinkName(kind SinkKind, name string) string { return string(kind) + "/" + name }

// ParseSink parses a sink's name.
func ParseSink(s string) (Sink, error) {
	kind, rest, ok := strings.Cut(s, "/")
	k := SinkKind(kind)
	switch k {
	case SinkReceiver, SinkChannel, SinkBroker, SinkKafka:
		if !ok || rest == "" {
			return Sink{}, fmt.Errorf("sink %s: not %s/<name>", s, kind)
		}
		return Sink{Kind: k, Name: rest}, nil
	case SinkService, SinkPod:
		target, path, _ := strings.Cut(rest, "/")
		obj, portText, ok := strings.Cut(target, ":")
		port, err := strconv.Atoi(portText)
		if !ok || obj == "" || err != nil || port <= 0 || port > 65535 {
			return Sink{}, fmt.Errorf("sink %s: not %s/<name>:<port>[/path]", s, kind)
		}
		return Sink{Kind: k, Name: obj, Port: port, Path: path}, nil
	}
	return Sink{}, fmt.Errorf("sink %s: not receiver/, channel/, broker/, kafka/, service/ or pod/ followed by a name", s)
}

// String returns the sink's name.
func (s Sink) String() string {
	if s.Kind == SinkService || s.Kind == SinkPod {
		name := fmt.Sprintf("%s/%s:%d", s.Kind, s.Name, s.Port)
		if s.Path != "" {
			name += "/" + s.Path
		}
		return name
	}
	return SinkName(s.Kind, s.Name)
}

// IsURL reports whether a sink is given as an http(s) URL instead of a name.
func IsURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}
