// Package redact keeps credentials out of what the runner prints and
// stores: the password of a URL's userinfo.
package redact

import (
	"net/url"
	"regexp"
	"strings"
)

// URL returns raw fit to print and store, a password in its userinfo
// replaced by xxxxx, and the password, so that messages quoting raw can
// be scrubbed too. A string with an '@' that does not parse as a URL is
// not shown at all.
func URL(raw string) (shown, password string) {
	if !strings.Contains(raw, "@") {
		return raw, ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "(a URL that does not parse)", ""
	}
	if u.User != nil {
		password, _ = u.User.Password()
	}
	return u.Redacted(), password
}

// String redacts s when it is a URL with a password in its userinfo, and
// returns any other string as it is.
func String(s string) string {
	if !strings.Contains(s, "://") || !strings.Contains(s, "@") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, ok := u.User.Password(); !ok {
		return s
	}
	return u.Redacted()
}

// Value returns v, a tree of YAML or JSON values, with String applied to
// every string in it. It copies what it changes and leaves v as it is.
func Value(v any) any {
	switch x := v.(type) {
	case string:
		return String(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = Value(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = Value(e)
		}
		return out
	}
	return v
}

// userinfoPassword matches the password of a URL's userinfo wherever the
// URL stands in a longer text: "sink=http://user:PASSWORD@host/".
var userinfoPassword = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:)[^@\s/]*@`)

// Text returns s with the password of every URL in it replaced by xxxxx:
// for a command line's arguments and key=value flags, where a URL is part
// of a word.
func Text(s string) string {
	return userinfoPassword.ReplaceAllString(s, "${1}xxxxx@")
}
