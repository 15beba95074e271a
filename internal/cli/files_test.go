package cli

import (
	"encoding/json"
	"testing"
)

func TestFilePath(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{"a.txt", "a.txt", false},
		{"/Shared Documents/Q1 report.xlsx", "Shared%20Documents/Q1%20report.xlsx", false},
		{"docs/100%/x?y#z", "docs/100%25/x%3Fy%23z", false},
		{"", "", true},
		{"docs/", "", true},
		{"docs//x", "", true},
		{"./x", "", true},
		{"docs/../x", "", true},
	}
	for _, tc := range tests {
		got, err := filePath(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("filePath(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestValueText(t *testing.T) {
	tests := []struct{ in, want string }{
		{`"text"`, "text"},
		{`true`, "True"},
		{`false`, "False"},
		{`null`, ""},
		{``, ""},
		{`42.5`, "42.5"},
		{`["a", "b"]`, "a, b"},
		{`[true, null, 1]`, "True, , 1"},
		{`[]`, ""},
		{`{"id": "9c", "n": [1]}`, `{"id":"9c","n":[1]}`},
	}
	for _, tc := range tests {
		if got := valueText(json.RawMessage(tc.in)); got != tc.want {
			t.Errorf("valueText(%s) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
