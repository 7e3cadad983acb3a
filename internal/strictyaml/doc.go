// Package strictyaml decodes YAML documents into Go types strictly, as
// scenario and matrix files are read: unknown keys (with the nearest
// allowed one suggested), missing required fields and ill-typed values are
// all reported in one pass, each as a Diagnostic at its file:line:column,
// and aliases cannot expand without bound. It also generates the JSON
// Schema of a type from the same struct tags the decoder reads (yaml, doc,
// pattern, runner:"required").
package strictyaml
