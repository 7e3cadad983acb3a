package twins

import (
	"reflect"
	"strconv"
	"strings"
)

// ValueSchemas returns the JSON Schemas of the value blocks every Knative
// system chart takes, generated from the types the twins decode them into,
// so that what a chart accepts and what its twin reads cannot drift:
// "delivery" (Delivery, as Knative's spec.delivery) and "twin" (Knobs).
// `make schema` writes them into the charts' values.schema.json.
func ValueSchemas() map[string]any {
	twin := objectSchema(reflect.TypeOf(Knobs{}))
	twin["description"] = "knobs of the embedded twin on --target local; ignored on a cluster"
	return map[string]any{"delivery": objectSchema(reflect.TypeOf(Delivery{})), "twin": twin}
}

// KnativeCharts are the charts that take ValueSchemas' blocks.
var KnativeCharts = []string{"channel-broker", "in-memory-channel", "kafka-broker", "kafka-channel", "kafka-source"}

// sinkSchema is a sink a Knative destination can name, or a URL.
var sinkSchema = map[string]any{
	"type":        "string",
	"pattern":     `^(https?://.+|(receiver|channel|inmemorychannel|kafkachannel|broker)/[A-Za-z0-9._-]+)$`,
	"description": "receiver/<name>, channel/<name> (Knative's generic Channel), inmemorychannel/<name>, kafkachannel/<name>, broker/<name> or a URL",
}

// namedSchemas are the value shapes a schema tag names.
var namedSchemas = map[string]func() map[string]any{
	"isoDuration": func() map[string]any {
		return map[string]any{
			"type":        "string",
			"pattern":     `^P(T(\d+(\.\d+)?[HMS])+|\d+D(T(\d+(\.\d+)?[HMS])+)?)$`,
			"description": "an ISO 8601 duration, as Knative writes them (PT0.2S, PT5M)",
		}
	},
	"sinkOrEmpty": func() map[string]any {
		return map[string]any{"anyOf": []any{map[string]any{"const": ""}, sinkSchema}}
	},
}

// objectSchema is the schema of a struct's JSON form: every field by its
// json name, its doc tag as description, and its schema tag: a named shape
// (isoDuration), or constraints (minimum=0,maximum=1, enum=a|b).
func objectSchema(t reflect.Type) map[string]any {
	props := map[string]any{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		props[name] = fieldSchema(f)
	}
	return map[string]any{"type": "object", "additionalProperties": false, "properties": props}
}

func fieldSchema(f reflect.StructField) map[string]any {
	tag := f.Tag.Get("schema")
	if named, ok := namedSchemas[tag]; ok {
		return named()
	}
	s := map[string]any{}
	switch f.Type.Kind() {
	case reflect.String:
		s["type"] = "string"
	case reflect.Int, reflect.Int64:
		s["type"] = "integer"
	case reflect.Float64:
		s["type"] = "number"
	default:
		panic("twins: no schema for field " + f.Name) // a programming error, found by the schema test
	}
	for _, c := range strings.Split(tag, ",") {
		key, value, ok := strings.Cut(c, "=")
		switch {
		case !ok:
		case key == "enum":
			delete(s, "type")
			var values []any
			for _, v := range strings.Split(value, "|") {
				values = append(values, v)
			}
			s["enum"] = values
		default:
			n, err := strconv.ParseFloat(value, 64)
			if err != nil {
				panic("twins: schema tag of " + f.Name + ": " + c)
			}
			s[key] = n
		}
	}
	if doc := f.Tag.Get("doc"); doc != "" {
		s["description"] = doc
	}
	return s
}
