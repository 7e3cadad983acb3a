package strictyaml

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"gopkg.in/yaml.v3"
)

// Parse parses file's one YAML document and returns its root node; no
// document, or a second one, is an error at its position.
func Parse(file string, src []byte) (*yaml.Node, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(src))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Diagnostics{{Pos: Pos{File: file, Line: 1, Column: 1}, Message: "empty scenario"}}.Err()
		}
		return nil, Diagnostics{{Pos: ErrorPos(file, err), Message: ErrorMessage(err)}}.Err()
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return nil, Diagnostics{{Pos: PosOf(file, &extra), Message: "a scenario file holds one YAML document; found a second"}}.Err()
	case !errors.Is(err, io.EOF):
		return nil, Diagnostics{{Pos: ErrorPos(file, err), Message: ErrorMessage(err)}}.Err()
	}
	if len(root.Content) == 0 {
		return nil, Diagnostics{{Pos: Pos{File: file, Line: 1, Column: 1}, Message: "empty scenario"}}.Err()
	}
	return root.Content[0], nil
}

// ErrorPos extracts the line from a yaml.v3 error, which gives no column.
func ErrorPos(file string, err error) Pos {
	var line int
	if _, scanErr := fmt.Sscanf(strings.TrimPrefix(err.Error(), "yaml: "), "line %d:", &line); scanErr == nil {
		return Pos{File: file, Line: line}
	}
	return Pos{File: file}
}

// ErrorMessage is a yaml.v3 error without its position.
func ErrorMessage(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if i := strings.Index(msg, ": "); strings.HasPrefix(msg, "line ") && i >= 0 {
		msg = msg[i+2:]
	}
	return "invalid YAML: " + msg
}
