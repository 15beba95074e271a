package postgres

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestSuccessor(t *testing.T) {
	tests := []struct {
		prefix string
		want   string
		ok     bool
	}{
		{"", "", false},
		{"a/", "a0", true},
		{"a", "b", true},
		{"a/é", "a/ê", true},
		{"a/\u07ff", "a/\u0800", true}, // two bytes become three
		{"x\ud7ff", "x\ue000", true},   // the surrogates are skipped
		{"x\U0010ffff", "y", true},     // no next code point: carry
		{"\U0010ffff\U0010ffff", "", false},
		{"k\u00bf", "k\u00c0", true}, // a last byte 0xBF must not become 0xC0
	}
	for _, tc := range tests {
		got, ok := successor(tc.prefix)
		if got != tc.want || ok != tc.ok {
			t.Errorf("successor(%q) = %q, %v; want %q, %v", tc.prefix, got, ok, tc.want, tc.ok)
		}
		if ok && !utf8.ValidString(got) {
			t.Errorf("successor(%q) = %q is not valid UTF-8", tc.prefix, got)
		}
	}
}

// TestSuccessorBounds checks the property List relies on, for keys made of
// code points around every boundary of the UTF-8 encoding: p <= k <
// successor(p) exactly when k starts with p.
func TestSuccessorBounds(t *testing.T) {
	runes := []rune{'/', '0', 'z', 0x7f, 0x80, 0xbf, 0xc0, 0x7ff, 0x800, 0xd7ff, 0xe000, 0xffff, 0x10000, 0x10ffff}
	var keys []string
	for _, a := range runes {
		keys = append(keys, string(a))
		for _, b := range runes {
			keys = append(keys, string(a)+string(b), string(a)+string(b)+"z")
		}
	}
	for _, p := range keys {
		end, ok := successor(p)
		for _, k := range keys {
			in := k >= p && (!ok || k < end)
			if in != strings.HasPrefix(k, p) {
				t.Fatalf("prefix %q, successor %q (ok=%v): key %q in range = %v, has prefix = %v", p, end, ok, k, in, !in)
			}
		}
	}
}

func TestListQuery(t *testing.T) {
	tests := []struct {
		name          string
		prefix, after string
		limit         int
		want          string
		args          []any
	}{
		{"everything", "", "", 0, "SELECT key, value, version FROM customerkey_kv ORDER BY key", nil},
		{"prefix", "a/", "", 0, "SELECT key, value, version FROM customerkey_kv WHERE key >= $1 AND key < $2 ORDER BY key", []any{"a/", "a0"}},
		{"cursor inside the prefix", "a/", "a/b", 5,
			"SELECT key, value, version FROM customerkey_kv WHERE key > $1 AND key < $2 ORDER BY key LIMIT $3", []any{"a/b", "a0", int64(5)}},
		{"cursor before the prefix", "b/", "a", 0, "SELECT key, value, version FROM customerkey_kv WHERE key >= $1 AND key < $2 ORDER BY key", []any{"b/", "b0"}},
		{"cursor without a prefix", "", "m", 2, "SELECT key, value, version FROM customerkey_kv WHERE key > $1 ORDER BY key LIMIT $2", []any{"m", int64(2)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, args := listQuery(tc.prefix, tc.after, tc.limit)
			if q != tc.want {
				t.Errorf("listQuery(%q, %q, %d) =\n%s\nwant\n%s", tc.prefix, tc.after, tc.limit, q, tc.want)
			}
			if diff := cmp.Diff(tc.args, args); diff != "" {
				t.Errorf("listQuery(%q, %q, %d) args mismatch (-want +got):\n%s", tc.prefix, tc.after, tc.limit, diff)
			}
		})
	}
}

func TestEmbeddedMigrations(t *testing.T) {
	ms, err := migrations()
	if err != nil {
		t.Fatalf("migrations() err = %v", err)
	}
	if len(ms) == 0 || ms[0].name != "kv" || !strings.Contains(ms[0].sql, `COLLATE "C"`) {
		t.Errorf("migrations() = %+v, want 0001_kv first with the C collation", ms)
	}
}

func TestUnavailableState(t *testing.T) {
	tests := []struct {
		code string
		want bool
	}{
		{"08006", true},  // connection failure
		{"57P01", true},  // admin shutdown: pg_terminate_backend
		{"57P03", true},  // cannot connect now: starting up
		{"53300", true},  // too many connections
		{"57014", false}, // query cancelled: the statement, not the server
		{"40001", false},
		{"28P01", false}, // wrong password
		{"3D000", false}, // no such database
		{"", false},
	}
	for _, tc := range tests {
		if got := unavailableState(tc.code); got != tc.want {
			t.Errorf("unavailableState(%q) = %v, want %v", tc.code, got, tc.want)
		}
	}
}
