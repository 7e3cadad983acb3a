package steps

import (
	"context"
	"fmt"

	"github.com/perfrunner/runner/agent"
	"github.com/perfrunner/runner/charts"
	"github.com/perfrunner/runner/internal/helm"
	"github.com/perfrunner/runner/target"
)

// agentsRelease is a release of an agents chart on a cluster: its pods,
// driven through port-forwards, and their receivers, which feed the run's
// measurement as the sink receiver/<name>.
type agentsRelease struct {
	release, namespace, name string
	clients                  []*agent.Client
	pods                     []target.AgentPod
}

// AgentRecord is one agent pod of the run, for run.json.
type AgentRecord struct {
	Release string `json:"release"`
	Pod     string `json:"pod"`
	Node    string `json:"node,omitempty"`
	Image   string `json:"image"`
	ImageID string `json:"image_id,omitempty"` // the image the node runs, by digest
	Version string `json:"version"`            // the runner's build in the pod
}

// withAgentImage gives an agents chart the image when the step's values
// name none (the chart's own default is for rendering it elsewhere).
func withAgentImage(c *helm.Chart, values map[string]any, image string) {
	if c.Annotations[charts.AgentsAnnotation] == "" {
		return
	}
	if s, _ := values["image"].(string); s == "" {
		values["image"] = image
	}
}

// attachAgents connects to the pods of an agents release just installed:
// each must be the runner's own build; their receivers' receipts feed the
// measurement from now on, under the sink receiver/<name> at the Service's
// address inside the cluster, and load steps send through them.
func (s *Shared) attachAgents(ctx context.Context, c *helm.Chart, release, namespace string, values map[string]any) error {
	port := c.Annotations[charts.AgentsAnnotation]
	t, err := s.Target()
	if err != nil {
		return err
	}
	reach, ok := t.(target.Agents)
	if port == "" || !ok {
		return nil
	}
	name, _ := values["name"].(string)
	if name == "" {
		return fmt.Errorf("agents release %s: its values name no Service (name)", release)
	}
	pods, err := reach.ForwardAgents(ctx, release, namespace, port)
	if err != nil {
		return err
	}
	ar := &agentsRelease{release: release, namespace: namespace, name: name, pods: pods}
	for _, p := range pods {
		cl, err := agent.Dial(ctx, "http://"+p.Control, agent.Version())
		if err != nil {
			return fmt.Errorf("agent pod %s (image %s): %w", p.Name, p.Image, err)
		}
		ar.clients = append(ar.clients, cl)
	}
	m, err := s.Measurement()
	if err != nil {
		return err
	}
	rs, err := agent.AttachReceivers(ctx, name, ar.clients, m.Route)
	if err != nil {
		return err
	}
	if err := m.AddRemote(name, rs); err != nil {
		_ = rs.Close(ctx)
		return err
	}
	sink := target.SinkName(target.SinkReceiver, name)
	if err := s.ClaimSink(sink, fmt.Sprintf("http://%s.%s.svc.cluster.local/", name, namespace)); err != nil {
		_ = m.StopReceiver(ctx, name)
		return err
	}
	s.mu.Lock()
	s.agents = append(s.agents, ar)
	s.mu.Unlock()
	return nil
}

// detachAgents stops pulling the receipts of an agents release about to
// be uninstalled, once every receipt it holds is in, and forgets it.
func (s *Shared) detachAgents(ctx context.Context, release, namespace string) error {
	s.mu.Lock()
	var ar *agentsRelease
	for k, a := range s.agents {
		if a.release == release && a.namespace == namespace {
			ar = a
			s.agents = append(s.agents[:k:k], s.agents[k+1:]...)
			break
		}
	}
	m := s.measurement
	s.mu.Unlock()
	if ar == nil {
		return nil
	}
	sink := target.SinkName(target.SinkReceiver, ar.name)
	s.mu.Lock()
	delete(s.sinks, sink)
	s.mu.Unlock()
	if m == nil {
		return nil
	}
	return m.StopReceiver(ctx, ar.name)
}

// agentClients returns the run's agents on a cluster, release by release
// in the order they were installed.
func (s *Shared) agentClients() []*agent.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*agent.Client
	for _, a := range s.agents {
		out = append(out, a.clients...)
	}
	return out
}

// Agents returns the run's agent pods, for run.json.
func (s *Shared) Agents() []AgentRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []AgentRecord
	for _, a := range s.agents {
		for k, p := range a.pods {
			out = append(out, AgentRecord{Release: a.release, Pod: p.Name, Node: p.Node, Image: p.Image, ImageID: p.ImageID, Version: a.clients[k].Info.Version})
		}
	}
	return out
}
