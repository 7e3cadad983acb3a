package strictyaml

import "testing"

func TestSuggest(t *testing.T) {
	tests := []struct{ word, want string }{
		{"timout", "timeout"},
		{"tiemout", "timeout"},
		{"retry", "retries"},
		{"xyz", ""},
	}
	for _, tt := range tests {
		if got := Suggest(tt.word, []string{"name", "timeout", "retries"}); got != tt.want {
			t.Errorf("suggest(%q) = %q, want %q", tt.word, got, tt.want)
		}
	}
}
