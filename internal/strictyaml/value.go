package strictyaml

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// ValueError is a node that Value cannot convert.
type ValueError struct {
	Node    *yaml.Node
	Message string
}

func (e *ValueError) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.Node.Line, e.Node.Column, e.Message)
}

// Value converts n to plain Go values, as yaml.v3 decodes a node into an
// any: mappings become map[string]any, sequences []any, scalars their
// resolved type. Unlike yaml.v3, whose check for duplicate keys makes a
// mapping of n keys cost n² comparisons, it takes time linear in the nodes
// it visits, and aliases may add at most maxAliasNodes to those written.
func Value(n *yaml.Node) (any, error) {
	left := 2*countNodes(n) + maxAliasNodes
	return value(n, func(*yaml.Node) bool { left--; return left >= 0 })
}

// value converts n, calling spend for every node it visits; a false from
// spend ends the conversion with an error.
func value(n *yaml.Node, spend func(*yaml.Node) bool) (any, error) {
	n = ResolveAlias(n)
	if n == nil {
		return nil, nil
	}
	if !spend(n) {
		return nil, &ValueError{n, fmt.Sprintf("aliases expand the document to more than %d nodes", maxAliasNodes)}
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return value(n.Content[0], spend)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := value(c, spend)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		if err := mapping(out, n, spend, false); err != nil {
			return nil, err
		}
		return out, nil
	case yaml.AliasNode:
		return nil, &ValueError{n, "aliases nest too deep"}
	}
	var x any
	if err := n.Decode(&x); err != nil {
		return nil, &ValueError{n, err.Error()}
	}
	return x, nil
}

// mapping adds n's keys to out; merged (a `<<` merge key's mapping) keys
// yield to those written beside the merge key.
func mapping(out map[string]any, n *yaml.Node, spend func(*yaml.Node) bool, merged bool) error {
	written := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := ResolveAlias(n.Content[i]), n.Content[i+1]
		if key.Kind == yaml.ScalarNode && key.Tag == "!!merge" {
			if err := merge(out, val, spend); err != nil {
				return err
			}
			continue
		}
		if key.Kind != yaml.ScalarNode {
			return &ValueError{key, "a mapping key must be a scalar, got " + Describe(key)}
		}
		if written[key.Value] {
			return &ValueError{key, fmt.Sprintf("key %q given twice", key.Value)}
		}
		written[key.Value] = true
		if _, exists := out[key.Value]; exists && merged {
			continue
		}
		v, err := value(val, spend)
		if err != nil {
			return err
		}
		out[key.Value] = v
	}
	return nil
}

// merge adds the mapping, or the sequence of mappings, of a merge key.
func merge(out map[string]any, n *yaml.Node, spend func(*yaml.Node) bool) error {
	n = ResolveAlias(n)
	switch n.Kind {
	case yaml.MappingNode:
		return mapping(out, n, spend, true)
	case yaml.SequenceNode:
		for _, c := range n.Content {
			if c = ResolveAlias(c); c.Kind != yaml.MappingNode {
				return &ValueError{c, "a merge key takes mappings, got " + Describe(c)}
			}
			if err := mapping(out, c, spend, true); err != nil {
				return err
			}
		}
		return nil
	}
	return &ValueError{n, "a merge key takes a mapping or a list of mappings, got " + Describe(n)}
}
