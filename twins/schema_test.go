package twins

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

var updateSchemas = flag.Bool("update", false, "write the generated value schemas into the charts' values.schema.json")

// The delivery and twin blocks of every Knative chart's values.schema.json
// are what ValueSchemas generates from the Go types (make schema writes
// them).
func TestChartValueSchemasAreCurrent(t *testing.T) {
	want := ValueSchemas()
	for _, chart := range KnativeCharts {
		path := filepath.Join("..", "charts", chart, "values.schema.json")
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		props := doc["properties"].(map[string]any)
		stale := false
		for block, schema := range want {
			var generated any
			b, _ := json.Marshal(schema)
			_ = json.Unmarshal(b, &generated)
			if !reflect.DeepEqual(props[block], generated) {
				stale = true
				props[block] = generated
			}
		}
		if !stale {
			continue
		}
		if !*updateSchemas {
			t.Errorf("%s: the delivery or twin block is not what the Go types say; run make schema", path)
			continue
		}
		var out bytes.Buffer
		enc := json.NewEncoder(&out)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(doc); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
