package strictyaml

import (
	"encoding/json"
	"reflect"

	"gopkg.in/yaml.v3"
)

// DecodeDocument decodes file's one YAML document into v, a pointer to a
// struct with `yaml` tags, as strictly as scenarios are decoded: unknown
// keys (with the nearest allowed one suggested), missing required fields
// and ill-typed values are all reported, each at its line and column. It
// returns the document's root node for further checks (see KeyPos).
func DecodeDocument(file string, src []byte, v any) (*yaml.Node, error) {
	root, err := Parse(file, src)
	if err != nil {
		return nil, err
	}
	var list Diagnostics
	Decode(NewDiags(file, root, &list), root, reflect.ValueOf(v))
	return root, list.Err()
}

// KeyPos returns the position of the value of key in the mapping n, or of n
// when it has no such key.
func KeyPos(file string, n *yaml.Node, key string) Pos {
	if _, v := FieldNode(n, key); v != nil {
		return PosOf(file, v)
	}
	return PosOf(file, n)
}

// ItemPos returns the position of item i of the sequence under key in the
// mapping n, or of the key's value when there is no such item.
func ItemPos(file string, n *yaml.Node, key string, i int) Pos {
	_, v := FieldNode(n, key)
	if v != nil && v.Kind == yaml.SequenceNode && i < len(v.Content) {
		return PosOf(file, v.Content[i])
	}
	return KeyPos(file, n, key)
}

// SchemaOf returns a JSON Schema (draft 2020-12) for documents decoded into
// v's type, generated from its Go type as the scenario schema is.
func SchemaOf(v any, id, title string) []byte {
	root := StructSchema(reflect.TypeOf(v).Elem())
	root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	root["$id"] = id
	root["title"] = title
	root["$defs"] = BaseDefs()
	out, err := json.MarshalIndent(root, "", "  ")
	if err != nil {
		panic(err)
	}
	return append(out, '\n')
}

// KeyNode returns the value of key in the mapping n, or nil.
func KeyNode(n *yaml.Node, key string) *yaml.Node {
	_, v := FieldNode(n, key)
	return v
}
