package jwk_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/json"
	"fmt"

	"github.com/customerkey/customerkey/internal/jwk"
)

// A fixed P-256 test key (d = 1, so the public point is the generator): the
// JSON a key bundle carries, base64url without padding and without d.
func ExampleFromPublic() {
	d := make([]byte, 32)
	d[31] = 1
	priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d)
	if err != nil {
		panic(err)
	}
	k, err := jwk.FromPublic("https://v.vault.localhost/keys/k1/0123", priv.Public(), []string{jwk.OpSign, jwk.OpVerify})
	if err != nil {
		panic(err)
	}
	b, _ := json.Marshal(k)
	fmt.Println(string(b))
	// Output:
	// {"kid":"https://v.vault.localhost/keys/k1/0123","kty":"EC","key_ops":["sign","verify"],"crv":"P-256","x":"axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY","y":"T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU"}
}

// Importing a key: read the JWK, then turn it into a Go key, which checks it.
func ExampleKey_PrivateKey() {
	in := `{"kty":"EC","crv":"P-256","x":"axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY",
		"y":"T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU","d":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAI"}`
	var k jwk.Key
	if err := json.Unmarshal([]byte(in), &k); err != nil {
		panic(err)
	}
	defer k.Wipe()
	_, err := k.PrivateKey()
	fmt.Println(err)
	// Output:
	// the EC key is not consistent: d does not match x and y
}
