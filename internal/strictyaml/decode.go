package strictyaml

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// NodeDecoder is implemented (on a pointer) by a type that decodes its own
// YAML node, reporting its problems to d.
type NodeDecoder interface {
	DecodeNode(d Diags, n *yaml.Node)
}

// Decode decodes n into the value v points to. Struct fields are
// matched by their `yaml` tag; unknown keys, missing required fields
// (`runner:"required"`) and ill-typed values are reported to d, and decoding
// goes on so that one pass finds every problem.
func Decode(d Diags, n *yaml.Node, v reflect.Value) {
	n = ResolveAlias(n)
	if n == nil || !d.Spend(n) {
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
	if v.CanAddr() {
		if nd, ok := v.Addr().Interface().(NodeDecoder); ok {
			nd.DecodeNode(d, n)
			return
		}
	}
	if v.Type() == DurationType {
		decodeDuration(d, n, v)
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		decodeStruct(d, n, v)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.At(n, "expected a list, got %s", Describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			Decode(d, item, s.Index(i))
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.At(n, "expected a mapping, got %s", Describe(n))
			return
		}
		m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			if seen[key.Value] {
				d.At(key, "key %q given twice", key.Value)
				continue
			}
			seen[key.Value] = true
			ev := reflect.New(v.Type().Elem()).Elem()
			Decode(d, val, ev)
			m.SetMapIndex(reflect.ValueOf(key.Value).Convert(v.Type().Key()), ev)
		}
		v.Set(m)
	case reflect.Interface:
		x, err := value(n, d.Spend)
		if err != nil {
			var ve *ValueError
			if errors.As(err, &ve) && d.work.spent < d.work.limit { // else Spend said it
				d.At(ve.Node, "%s", ve.Message)
			}
			return
		}
		if x != nil {
			v.Set(reflect.ValueOf(x))
		}
	case reflect.String:
		if !IsScalar(n) {
			d.At(n, "expected a string, got %s", Describe(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		b, ok := ScalarBool(n)
		if !ok {
			d.At(n, "expected true or false, got %s", Describe(n))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, err := strconv.ParseInt(n.Value, 0, v.Type().Bits())
		if !IsScalar(n) || err != nil || n.ShortTag() != "!!int" {
			d.At(n, "expected an integer, got %s", Describe(n))
			return
		}
		v.SetInt(i)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(n.Value, v.Type().Bits())
		if !IsScalar(n) || err != nil || math.IsNaN(f) || math.IsInf(f, 0) || (n.ShortTag() != "!!int" && n.ShortTag() != "!!float") {
			d.At(n, "expected a number, got %s", Describe(n))
			return
		}
		v.SetFloat(f)
	default:
		panic(fmt.Sprintf("strictyaml: cannot decode into %s", v.Type()))
	}
}

// DurationType is time.Duration, decoded from Go duration strings (30s, 5m).
var DurationType = reflect.TypeOf(time.Duration(0))

func decodeDuration(d Diags, n *yaml.Node, v reflect.Value) {
	if !IsScalar(n) {
		d.At(n, "expected a duration such as 30s or 5m, got %s", Describe(n))
		return
	}
	if _, err := strconv.ParseFloat(n.Value, 64); err == nil {
		d.At(n, "duration %q has no unit (write %ss or %sm)", n.Value, n.Value, n.Value)
		return
	}
	dur, err := time.ParseDuration(n.Value)
	if err != nil {
		d.At(n, "expected a duration such as 30s or 5m, got %q", n.Value)
		return
	}
	v.SetInt(int64(dur))
}

func decodeStruct(d Diags, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.At(n, "expected a mapping, got %s", Describe(n))
		return
	}
	fields := Fields(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		f, ok := fields.ByKey[key.Value]
		if !ok {
			d.At(key, "%s", UnknownKey(key.Value, fields.Keys))
			// A misspelt required key is reported once, as misspelt.
			if near := Suggest(key.Value, fields.Keys); near != "" {
				seen[near] = true
			}
			continue
		}
		if seen[key.Value] {
			d.At(key, "key %q given twice", key.Value)
			continue
		}
		seen[key.Value] = true
		Decode(d, val, v.FieldByIndex(f.Index))
	}
	for _, k := range fields.Keys {
		if fields.ByKey[k].Required && !seen[k] {
			d.At(n, "missing required key %q", k)
		}
	}
}

// Field is one decodable struct field.
type Field struct {
	Key      string       // the yaml key
	Index    []int        // for reflect.Value.FieldByIndex
	Required bool         // tagged runner:"required"
	Doc      string       // the doc tag
	Type     reflect.Type // the field's type
}

// FieldSet is the decodable fields of a struct type.
type FieldSet struct {
	ByKey map[string]Field
	Keys  []string // sorted
}

// Fields lists the fields of t that carry a `yaml` tag.
func Fields(t reflect.Type) FieldSet {
	fs := FieldSet{ByKey: map[string]Field{}}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if sf.IsExported() && sf.Type.Kind() == reflect.Struct && sf.Tag.Get("yaml") == ",inline" {
			inner := Fields(sf.Type)
			for _, k := range inner.Keys {
				f := inner.ByKey[k]
				f.Index = append([]int{i}, f.Index...)
				fs.ByKey[k] = f
				fs.Keys = append(fs.Keys, k)
			}
			continue
		}
		tag := strings.Split(sf.Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" || !sf.IsExported() {
			continue
		}
		fs.ByKey[tag] = Field{
			Key:      tag,
			Index:    sf.Index,
			Required: sf.Tag.Get("runner") == "required",
			Doc:      sf.Tag.Get("doc"),
			Type:     sf.Type,
		}
		fs.Keys = append(fs.Keys, tag)
	}
	sort.Strings(fs.Keys)
	return fs
}

// FieldNode returns the key node and value node of key in mapping n.
func FieldNode(n *yaml.Node, key string) (k, v *yaml.Node) {
	n = ResolveAlias(n)
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

func ResolveAlias(n *yaml.Node) *yaml.Node {
	for depth := 0; n != nil && n.Kind == yaml.AliasNode && depth < 100; depth++ {
		n = n.Alias
	}
	return n
}

func IsScalar(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag != "!!null" }

func ScalarBool(n *yaml.Node) (bool, bool) {
	if !IsScalar(n) || n.ShortTag() != "!!bool" {
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

// Describe names what a node holds, for error messages.
func Describe(n *yaml.Node) string {
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
