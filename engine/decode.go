package engine

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// decodeStrict decodes n into the value v points to. Struct fields are
// matched by their `yaml` tag; unknown keys, missing required fields
// (`runner:"required"`) and ill-typed values are reported to d, and decoding
// goes on so that one pass finds every problem.
func decodeStrict(d diags, n *yaml.Node, v reflect.Value) {
	n = resolveAlias(n)
	if n == nil || !d.spend(n) {
		return
	}
	if v.Kind() == reflect.Pointer {
		if n.Tag == "!!null" {
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		v = v.Elem()
	}
	switch v.Type() {
	case durationType:
		decodeDuration(d, n, v)
		return
	case stepListType:
		if n.Kind != yaml.SequenceNode && n.Tag != "!!null" {
			d.at(n, "expected a list of steps, got %s", describe(n))
			return
		}
		v.Set(reflect.ValueOf(stepList{node: n}))
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		decodeStruct(d, n, v)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.at(n, "expected a list, got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			decodeStrict(d, item, s.Index(i))
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.at(n, "expected a mapping, got %s", describe(n))
			return
		}
		m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			if seen[key.Value] {
				d.at(key, "key %q given twice", key.Value)
				continue
			}
			seen[key.Value] = true
			ev := reflect.New(v.Type().Elem()).Elem()
			decodeStrict(d, val, ev)
			m.SetMapIndex(reflect.ValueOf(key.Value).Convert(v.Type().Key()), ev)
		}
		v.Set(m)
	case reflect.Interface:
		var x any
		if err := n.Decode(&x); err != nil {
			d.at(n, "%v", err)
			return
		}
		if x != nil {
			v.Set(reflect.ValueOf(x))
		}
	case reflect.String:
		if !isScalar(n) {
			d.at(n, "expected a string, got %s", describe(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		b, ok := scalarBool(n)
		if !ok {
			d.at(n, "expected true or false, got %s", describe(n))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, err := strconv.ParseInt(n.Value, 0, v.Type().Bits())
		if !isScalar(n) || err != nil || n.ShortTag() != "!!int" {
			d.at(n, "expected an integer, got %s", describe(n))
			return
		}
		v.SetInt(i)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(n.Value, v.Type().Bits())
		if !isScalar(n) || err != nil || math.IsNaN(f) || math.IsInf(f, 0) || (n.ShortTag() != "!!int" && n.ShortTag() != "!!float") {
			d.at(n, "expected a number, got %s", describe(n))
			return
		}
		v.SetFloat(f)
	default:
		panic(fmt.Sprintf("engine: cannot decode into %s", v.Type()))
	}
}

var durationType = reflect.TypeOf(time.Duration(0))

func decodeDuration(d diags, n *yaml.Node, v reflect.Value) {
	if !isScalar(n) {
		d.at(n, "expected a duration such as 30s or 5m, got %s", describe(n))
		return
	}
	if _, err := strconv.ParseFloat(n.Value, 64); err == nil {
		d.at(n, "duration %q has no unit (write %ss or %sm)", n.Value, n.Value, n.Value)
		return
	}
	dur, err := time.ParseDuration(n.Value)
	if err != nil {
		d.at(n, "expected a duration such as 30s or 5m, got %q", n.Value)
		return
	}
	v.SetInt(int64(dur))
}

func decodeStruct(d diags, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.at(n, "expected a mapping, got %s", describe(n))
		return
	}
	fields := structFields(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		f, ok := fields.byKey[key.Value]
		if !ok {
			d.at(key, "%s", unknownKey(key.Value, fields.keys))
			// A misspelt required key is reported once, as misspelt.
			if near := suggest(key.Value, fields.keys); near != "" {
				seen[near] = true
			}
			continue
		}
		if seen[key.Value] {
			d.at(key, "key %q given twice", key.Value)
			continue
		}
		seen[key.Value] = true
		decodeStrict(d, val, v.FieldByIndex(f.index))
	}
	for _, k := range fields.keys {
		if fields.byKey[k].required && !seen[k] {
			d.at(n, "missing required key %q", k)
		}
	}
}

// field is one decodable struct field.
type field struct {
	key      string
	index    []int
	required bool
	doc      string
	typ      reflect.Type
}

type fieldSet struct {
	byKey map[string]field
	keys  []string // sorted
}

// structFields lists the fields of t that carry a `yaml` tag.
func structFields(t reflect.Type) fieldSet {
	fs := fieldSet{byKey: map[string]field{}}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if sf.IsExported() && sf.Type.Kind() == reflect.Struct && sf.Tag.Get("yaml") == ",inline" {
			inner := structFields(sf.Type)
			for _, k := range inner.keys {
				f := inner.byKey[k]
				f.index = append([]int{i}, f.index...)
				fs.byKey[k] = f
				fs.keys = append(fs.keys, k)
			}
			continue
		}
		tag := strings.Split(sf.Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" || !sf.IsExported() {
			continue
		}
		fs.byKey[tag] = field{
			key:      tag,
			index:    sf.Index,
			required: sf.Tag.Get("runner") == "required",
			doc:      sf.Tag.Get("doc"),
			typ:      sf.Type,
		}
		fs.keys = append(fs.keys, tag)
	}
	sort.Strings(fs.keys)
	return fs
}

// fieldNode returns the key node and value node of key in mapping n.
func fieldNode(n *yaml.Node, key string) (k, v *yaml.Node) {
	n = resolveAlias(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i], n.Content[i+1]
		}
	}
	return nil, nil
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for depth := 0; n != nil && n.Kind == yaml.AliasNode && depth < 100; depth++ {
		n = n.Alias
	}
	return n
}

func isScalar(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag != "!!null" }

func scalarBool(n *yaml.Node) (bool, bool) {
	if !isScalar(n) || n.ShortTag() != "!!bool" {
		return false, false
	}
	switch n.Value {
	case "true", "True", "TRUE":
		return true, true
	case "false", "False", "FALSE":
		return false, true
	}
	return false, false
}

// describe names what a node holds, for error messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		v := n.Value
		if len(v) > 40 {
			v = v[:37] + "..."
		}
		return strconv.Quote(v)
	}
	return "an alias"
}
