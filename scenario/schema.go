package scenario

import (
	"encoding/json"
	"reflect"

	"github.com/perfrunner/runner/internal/strictyaml"
	"github.com/perfrunner/runner/steps"
)

// SchemaID is the identifier of the scenario JSON Schema.
const SchemaID = "https://perfrunner.github.io/runner/scenario.schema.json"

// Schema returns a JSON Schema (draft 2020-12) for scenario files, generated
// from the same Go types the decoder uses, so the two cannot drift. Values
// that are not strings also accept a template string ("{{ … }}").
func Schema() []byte {
	defs := strictyaml.BaseDefs()
	defs["step"] = stepSchema()
	root := strictyaml.StructSchema(reflect.TypeOf(document{}))
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

func stepSchema() map[string]any {
	common := strictyaml.Fields(reflect.TypeOf(stepFields{}))
	var branches []any
	for _, name := range steps.Names() {
		kind, _ := steps.Lookup(name)
		props := map[string]any{name: strictyaml.TypeSchema(reflect.TypeOf(kind.New()), "")}
		for _, k := range common.Keys {
			if k == "retries" && !kind.Retryable {
				continue
			}
			f := common.ByKey[k]
			props[k] = strictyaml.WithDoc(strictyaml.TypeSchema(f.Type, ""), f.Doc)
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
