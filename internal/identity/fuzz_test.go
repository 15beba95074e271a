package identity_test

import (
	"context"
	"testing"

	"github.com/customerkey/customerkey/internal/identity"
)

// FuzzParseAssertion feeds untrusted client assertions to the first code
// that parses them: it must never panic.
func FuzzParseAssertion(f *testing.F) {
	for _, s := range []string{"", "a.b.c", "eyJhbGciOiJub25lIn0.e30.",
		"eyJhbGciOiJSUzI1NiIsIng1dCI6IkFBQUEifQ.e30.AAAA",
		"eyJhbGciOiJQUzI1NiIsIng1dCNTMjU2Ijp7fX0.e30.AAAA",
		"eyJhbGciOiJSUzI1NiIsIng1YyI6WyJNSUlCIl19.e30.AAAA"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		_ = identity.ParseAssertionForTest(raw)
	})
}

// FuzzVerify feeds untrusted bearer tokens to Verify.
func FuzzVerify(f *testing.F) {
	e := newEnv(f)
	f.Add(e.appToken(vaultRes + "/.default"))
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, tok string) {
		_, _ = e.svc.Verify(context.Background(), tok, identity.KeyVault)
	})
}
