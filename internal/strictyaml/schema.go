package strictyaml

import "reflect"

// BaseDefs are the definitions every generated schema refers to: a Go
// duration and a template string.
func BaseDefs() map[string]any {
	return map[string]any{
		"duration": map[string]any{"anyOf": []any{
			map[string]any{"type": "string", "pattern": `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`},
			map[string]any{"$ref": "#/$defs/template"},
		}, "description": "a Go duration: 300ms, 30s, 5m, 1h30m"},
		"template": map[string]any{"type": "string", "pattern": `\{\{`, "description": "a Go template, rendered before the value is decoded"},
	}
}

// WithDoc sets s's description to doc, when there is one.
func WithDoc(s map[string]any, doc string) map[string]any {
	if doc != "" {
		s["description"] = doc
	}
	return s
}

// StructSchema is the schema of a struct decoded by Decode: its yaml keys,
// no others.
func StructSchema(t reflect.Type) map[string]any {
	fs := Fields(t)
	props := map[string]any{}
	var required []string
	for _, k := range fs.Keys {
		f := fs.ByKey[k]
		props[k] = WithDoc(TypeSchema(f.Type, FieldPattern(t, k)), f.Doc)
		if f.Required {
			required = append(required, k)
		}
	}
	s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}

// FieldPattern is the pattern tag of the field of t under key.
func FieldPattern(t reflect.Type, key string) string {
	f := Fields(t).ByKey[key]
	return t.FieldByIndex(f.Index).Tag.Get("pattern")
}

// OrTemplate allows a template string where s is expected.
func OrTemplate(s map[string]any) map[string]any {
	return map[string]any{"anyOf": []any{s, map[string]any{"$ref": "#/$defs/template"}}}
}

// TypeSchema maps a Go type to a schema; pattern, when set, applies to the
// strings it holds (for a map, to its values).
func TypeSchema(t reflect.Type, pattern string) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case DurationType:
		return map[string]any{"$ref": "#/$defs/duration"}
	}
	if s, ok := reflect.New(t).Interface().(Schemer); ok {
		return s.JSONSchema()
	}
	switch t.Kind() {
	case reflect.Struct:
		return StructSchema(t)
	case reflect.Slice:
		return map[string]any{"type": "array", "items": TypeSchema(t.Elem(), pattern)}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": TypeSchema(t.Elem(), pattern)}
	case reflect.String:
		s := map[string]any{"type": "string"}
		if pattern != "" {
			s["pattern"] = pattern
		}
		return s
	case reflect.Bool:
		return OrTemplate(map[string]any{"type": "boolean"})
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return OrTemplate(map[string]any{"type": "integer"})
	case reflect.Float32, reflect.Float64:
		return OrTemplate(map[string]any{"type": "number"})
	}
	return map[string]any{}
}

// Schemer is implemented by a type that says its own JSON Schema, as a
// NodeDecoder decodes its own node.
type Schemer interface {
	JSONSchema() map[string]any
}
