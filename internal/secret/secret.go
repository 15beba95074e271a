// Package secret owns the in-memory type for key material and other secrets.
//
// A Bytes value cannot be compared with ==, prints and logs as "[secret]",
// and is wiped explicitly at the end of its life. Copying the plaintext out
// is deliberate: call Reveal. It imports nothing from this module.
package secret

import (
	"crypto/subtle"
	"fmt"
	"log/slog"
)

// Bytes holds secret bytes. The zero value is empty.
type Bytes struct {
	_ [0]func() // makes == a compile error
	b []byte
}

// New takes ownership of b: the caller must not use b afterwards.
func New(b []byte) Bytes { return Bytes{b: b} }

// Copy returns a Bytes holding a copy of b; the caller still owns b.
func Copy(b []byte) Bytes { return Bytes{b: append([]byte(nil), b...)} }

// Reveal returns the secret bytes. The slice aliases the secret: do not keep
// it beyond the life of s and do not modify it.
func (s Bytes) Reveal() []byte { return s.b }

// Len is the length of the secret in bytes.
func (s Bytes) Len() int { return len(s.b) }

// IsZero reports whether s holds nothing.
func (s Bytes) IsZero() bool { return len(s.b) == 0 }

// Equal compares two secrets in constant time.
func (s Bytes) Equal(o Bytes) bool { return subtle.ConstantTimeCompare(s.b, o.b) == 1 }

// Clone returns an independent copy.
func (s Bytes) Clone() Bytes { return Copy(s.b) }

// Wipe overwrites the secret with zeros and releases it.
func (s *Bytes) Wipe() {
	Wipe(s.b)
	s.b = nil
}

// Wipe zeroes b. It is the one place where buffers holding secrets are
// cleared, so that a stronger mechanism can be adopted in one place.
func Wipe(b []byte) { clear(b) }

// String never reveals the secret.
func (Bytes) String() string { return "[secret]" }

// GoString never reveals the secret, even under %#v.
func (Bytes) GoString() string { return "secret.Bytes{[secret]}" }

// Format never reveals the secret, whatever the verb.
func (Bytes) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte("[secret]")) }

// LogValue never reveals the secret.
func (Bytes) LogValue() slog.Value { return slog.StringValue("[secret]") }

// MarshalJSON refuses, so that a secret cannot leak through an encoder.
func (Bytes) MarshalJSON() ([]byte, error) {
	return nil, fmt.Errorf("secret: refusing to marshal secret bytes")
}

// String is a secret string such as a password or a client secret.
type String struct {
	_ [0]func()
	s string
}

// NewString wraps s.
func NewString(s string) String { return String{s: s} }

// Reveal returns the secret text.
func (s String) Reveal() string { return s.s }

// IsZero reports whether s is empty.
func (s String) IsZero() bool { return s.s == "" }

// String never reveals the secret.
func (String) String() string { return "[secret]" }

// GoString never reveals the secret.
func (String) GoString() string { return "secret.String{[secret]}" }

// Format never reveals the secret, whatever the verb.
func (String) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte("[secret]")) }

// LogValue never reveals the secret.
func (String) LogValue() slog.Value { return slog.StringValue("[secret]") }
