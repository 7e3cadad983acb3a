package scenario

import (
	"fmt"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
	"k8s.io/client-go/util/jsonpath"

	"github.com/perfrunner/runner/internal/strictyaml"
)

// Check is one thing a cluster must hold: an object, ready as kube.wait
// judges it, or whose JSONPath prints a value.
type Check struct {
	Name      string `yaml:"name" doc:"what the check means, for people (default: the object)"`
	Object    string `yaml:"object" doc:"kind/name as kube.wait names objects, e.g. knativeeventing/knative-eventing or customresourcedefinition/inmemorychannels.messaging.knative.dev"`
	Namespace string `yaml:"namespace" doc:"the object's namespace, for a namespaced kind"`
	JSONPath  string `yaml:"jsonpath" doc:"instead of readiness, a JSONPath expression on the object that must print value, e.g. '{.status.version}'"`
	Value     string `yaml:"value" doc:"what jsonpath must print"`
}

// Label names the check for messages: its name and its object.
func (c Check) Label() string {
	if c.Name != "" {
		return c.Name + " (" + c.object() + ")"
	}
	return c.object()
}

func (c Check) object() string {
	s := c.Object
	if c.Namespace != "" {
		s += " in " + c.Namespace
	}
	if c.JSONPath != "" {
		s += fmt.Sprintf(" with %s = %q", c.JSONPath, c.Value)
	}
	return s
}

// Requirement is what a scenario needs installed before its setup, on
// --target kubernetes: a platform file's provides, or a check of its own.
type Requirement struct {
	Platform string `yaml:"platform" doc:"a platform file (runner platform install FILE), relative to this file: every check of its provides must hold"`
	Check    `yaml:",inline"`
}

// Platform is the platform a requirement names, loaded.
type Platform struct {
	File     string
	Name     string
	Provides []Check
}

// Requirements returns the scenario's requirements as checks, each with
// the platform it comes from (nil for a check of the scenario's own).
func (sc *Scenario) Requirements() ([]Check, []*Platform, error) {
	var checks []Check
	var from []*Platform
	for _, r := range sc.Requires {
		if r.Platform == "" {
			checks, from = append(checks, r.Check), append(from, nil)
			continue
		}
		file := r.Platform
		if !filepath.IsAbs(file) && sc.File != "" {
			file = filepath.Join(filepath.Dir(sc.File), file)
		}
		p, err := Load(file, Options{})
		if err != nil {
			return nil, nil, fmt.Errorf("requires: platform %s: %w", r.Platform, err)
		}
		if len(p.Provides) == 0 {
			return nil, nil, fmt.Errorf("requires: platform %s: the file provides nothing (a platform file lists provides:)", r.Platform)
		}
		pl := &Platform{File: file, Name: p.Name, Provides: p.Provides}
		for _, c := range p.Provides {
			checks, from = append(checks, c), append(from, pl)
		}
	}
	return checks, from, nil
}

// checkRequirements reports malformed requires and provides entries where
// they are.
func checkRequirements(d strictyaml.Diags, root *yaml.Node, doc *document) {
	item := func(key string, i int) *yaml.Node {
		_, n := strictyaml.FieldNode(root, key)
		if n = strictyaml.ResolveAlias(n); n == nil || n.Kind != yaml.SequenceNode || i >= len(n.Content) {
			return root
		}
		return n.Content[i]
	}
	for i, r := range doc.Requires {
		n := item("requires", i)
		switch {
		case r.Platform != "" && (r.Object != "" || r.JSONPath != ""):
			d.At(n, "give platform or object, not both")
		case r.Platform == "" && r.Object == "":
			d.At(n, "give a platform file (platform:) or an object to check (object: kind/name)")
		case r.Object != "":
			checkCheck(d, n, r.Check)
		}
	}
	for i, c := range doc.Provides {
		n := item("provides", i)
		if c.Object == "" {
			d.At(n, "a check names an object (object: kind/name)")
			continue
		}
		checkCheck(d, n, c)
	}
}

func checkCheck(d strictyaml.Diags, n *yaml.Node, c Check) {
	kind, name, ok := strings.Cut(c.Object, "/")
	if !ok || kind == "" || name == "" || strings.Contains(name, "/") {
		d.At(n, "object %q is not kind/name", c.Object)
	}
	if (c.JSONPath == "") != (c.Value == "") {
		d.At(n, "jsonpath and value go together")
	}
	if c.JSONPath != "" {
		if err := jsonpath.New("check").Parse(c.JSONPath); err != nil {
			d.At(n, "jsonpath %q: %v", c.JSONPath, err)
		}
	}
}
