package secret_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/customerkey/customerkey/internal/secret"
)

func TestBytesNeverPrints(t *testing.T) {
	s := secret.Copy([]byte("hunter2-key-material"))
	t.Cleanup(func() { s.Wipe() })
	s2 := secret.NewString("hunter2-password")
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		for _, v := range []any{s, &s, s2, struct{ K secret.Bytes }{s}} {
			if got := fmt.Sprintf(f, v); strings.Contains(got, "hunter2") || strings.Contains(got, "68756e74657232") {
				t.Errorf("Sprintf(%q) = %q, leaks the secret", f, got)
			}
		}
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "k", s, "p", s2)
	if strings.Contains(buf.String(), "hunter2") {
		t.Errorf("slog output %q leaks the secret", buf.String())
	}
	if _, err := json.Marshal(struct{ K secret.Bytes }{s}); err == nil {
		t.Error("json.Marshal of secret.Bytes succeeded, want an error")
	}
}

func TestWipe(t *testing.T) {
	raw := []byte{1, 2, 3, 4}
	s := secret.New(raw)
	s.Wipe()
	if !s.IsZero() {
		t.Error("after Wipe, IsZero() = false")
	}
	if !bytes.Equal(raw, []byte{0, 0, 0, 0}) {
		t.Errorf("after Wipe the backing array = %v, want zeros", raw)
	}
}

func TestEqual(t *testing.T) {
	a, b, c := secret.Copy([]byte("abc")), secret.Copy([]byte("abc")), secret.Copy([]byte("abd"))
	if !a.Equal(b) || a.Equal(c) {
		t.Errorf("Equal: a==b %v, a==c %v; want true, false", a.Equal(b), a.Equal(c))
	}
}
