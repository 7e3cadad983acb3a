package engine

import (
	"encoding/json"
	"reflect"

	"github.com/perfrunner/runner/steps"
)

// SchemaID is the identifier of the scenario JSON Schema.
const SchemaID = "https://perfrunner.github.io/runner/scenario.schema.json"

// Schema returns a JSON Schema (draft 2020-12) for scenario files, generated
// from the same Go types the decoder uses, so the two cannot drift. Values
// that are not strings also accept a template string ("{{ … }}").
func Schema() []byte {
	defs := baseDefs()
	defs["step"] = stepSchema()
	root := structSchema(reflect.TypeOf(document{}))
	root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	root["$id"] = SchemaID
	root["title"] = "runner scenario"
	root["$defs"] = defs
	out, err := json.MarshalIndent(root, "", "  ")
	if err != nil {
		panic(err) // the schema is built from static types; this cannot fail
	}
	return append(out, '\n')
}

// baseDefs are the definitions every generated schema refers to.
func baseDefs() map[string]any {
	return map[string]any{
		"duration": map[string]any{"anyOf": []any{
			map[string]any{"type": "string", "pattern": `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`},
			map[string]any{"$ref": "#/$defs/template"},
		}, "description": "a Go duration: 300ms, 30s, 5m, 1h30m"},
		"template": map[string]any{"type": "string", "pattern": `\{\{`, "description": "a Go template, rendered before the value is decoded"},
	}
}

func stepSchema() map[string]any {
	common := structFields(reflect.TypeOf(stepFields{}))
	var branches []any
	for _, name := range steps.Names() {
		kind, _ := steps.Lookup(name)
		props := map[string]any{name: typeSchema(reflect.TypeOf(kind.New()), "")}
		for _, k := range common.keys {
			if k == "retries" && !kind.Retryable {
				continue
			}
			f := common.byKey[k]
			props[k] = withDoc(typeSchema(f.typ, ""), f.doc)
		}
		branches = append(branches, map[string]any{
			"type":                 "object",
			"description":          kind.Doc,
			"required":             []string{name},
			"properties":           props,
			"additionalProperties": false,
		})
	}
	return map[string]any{"oneOf": branches}
}

func withDoc(s map[string]any, doc string) map[string]any {
	if doc != "" {
		s["description"] = doc
	}
	return s
}

func structSchema(t reflect.Type) map[string]any {
	fs := structFields(t)
	props := map[string]any{}
	var required []string
	for _, k := range fs.keys {
		f := fs.byKey[k]
		props[k] = withDoc(typeSchema(f.typ, fieldPattern(t, k)), f.doc)
		if f.required {
			required = append(required, k)
		}
	}
	s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}

func fieldPattern(t reflect.Type, key string) string {
	f := structFields(t).byKey[key]
	return t.FieldByIndex(f.index).Tag.Get("pattern")
}

func orTemplate(s map[string]any) map[string]any {
	return map[string]any{"anyOf": []any{s, map[string]any{"$ref": "#/$defs/template"}}}
}

// typeSchema maps a Go type to a schema; pattern, when set, applies to the
// strings it holds (for a map, to its values).
func typeSchema(t reflect.Type, pattern string) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case durationType:
		return map[string]any{"$ref": "#/$defs/duration"}
	case stepListType:
		return map[string]any{"type": []string{"array", "null"}, "items": map[string]any{"$ref": "#/$defs/step"}}
	}
	switch t.Kind() {
	case reflect.Struct:
		return structSchema(t)
	case reflect.Slice:
		return map[string]any{"type": "array", "items": typeSchema(t.Elem(), pattern)}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": typeSchema(t.Elem(), pattern)}
	case reflect.String:
		s := map[string]any{"type": "string"}
		if pattern != "" {
			s["pattern"] = pattern
		}
		return s
	case reflect.Bool:
		return orTemplate(map[string]any{"type": "boolean"})
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return orTemplate(map[string]any{"type": "integer"})
	case reflect.Float32, reflect.Float64:
		return orTemplate(map[string]any{"type": "number"})
	}
	return map[string]any{}
}
