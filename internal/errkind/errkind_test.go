package errkind_test

import (
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/customerkey/customerkey/internal/errkind"
)

func TestKindOf(t *testing.T) {
	base := errkind.New(errkind.NotFound, "tenant not found")
	tests := []struct {
		name string
		err  error
		want errkind.Kind
		pub  string
	}{
		{"direct", base, errkind.NotFound, "tenant not found"},
		{"wrapped", fmt.Errorf("loading: %w", base), errkind.NotFound, "tenant not found"},
		{"with cause", errkind.Wrap(errkind.Unavailable, "store unavailable", io.ErrUnexpectedEOF), errkind.Unavailable, "store unavailable"},
		{"plain", io.EOF, errkind.Internal, errkind.Public(io.EOF)},
		{"internal hides message", errkind.Wrap(errkind.Internal, "secret detail", io.EOF), errkind.Internal, errkind.Public(io.EOF)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := errkind.KindOf(tc.err); got != tc.want {
				t.Errorf("KindOf(%v) = %v, want %v", tc.err, got, tc.want)
			}
			if got := errkind.Public(tc.err); got != tc.pub {
				t.Errorf("Public(%v) = %q, want %q", tc.err, got, tc.pub)
			}
		})
	}
	if !errors.Is(fmt.Errorf("x: %w", base), base) {
		t.Error("errors.Is on a wrapped sentinel = false, want true")
	}
	if c := base.WithCode("X"); c.Code != "X" || base.Code != "" {
		t.Errorf("WithCode changed the sentinel: %q / %q", c.Code, base.Code)
	}
}
