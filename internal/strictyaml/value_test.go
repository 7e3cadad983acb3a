package strictyaml

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func node(t *testing.T, src string) *yaml.Node {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(src), &n); err != nil {
		t.Fatal(err)
	}
	return &n
}

// TestValueDecodesAsYAMLDoes compares Value with yaml.v3's own decoding
// into an any, merge keys and aliases included.
func TestValueDecodesAsYAMLDoes(t *testing.T) {
	src := `base: &b {a: 1, b: [x, 2.5, true, null]}
top:
  <<: *b
  b: replaced
  c: {d: "1", e: 2026-12-01}
merged:
  <<: [{k: first}, {k: second, j: 3}]
`
	var want any
	if err := yaml.Unmarshal([]byte(src), &want); err != nil {
		t.Fatal(err)
	}
	got, err := Value(node(t, src))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Value = %#v\nyaml.v3 = %#v", got, want)
	}
}

func TestValueRefuses(t *testing.T) {
	bomb := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	for i := 'b'; i <= 'h'; i++ {
		prev := string(i - 1)
		bomb += fmt.Sprintf("%c: &%c [*%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s]\n", i, i, prev, prev, prev, prev, prev, prev, prev, prev, prev, prev)
	}
	for src, want := range map[string]string{
		"a: 1\na: 2\n":  `line 2, column 1: key "a" given twice`,
		"? [1, 2]\n: x": "line 1, column 3: a mapping key must be a scalar, got a list",
		bomb:            "aliases expand the document to more than 100000 nodes",
	} {
		_, err := Value(node(t, src))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Value(%.20q) = %v, want %s", src, err, want)
		}
	}
}
