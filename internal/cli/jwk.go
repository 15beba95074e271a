package cli

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/base64"
	"math/big"
)

// privateJWK turns a parsed private key into a JSON Web Key for import.
func privateJWK(key any) (map[string]any, error) {
	b := func(i *big.Int) string { return base64.RawURLEncoding.EncodeToString(i.Bytes()) }
	switch k := key.(type) {
	case *rsa.PrivateKey:
		k.Precompute()
		return map[string]any{"kty": "RSA", "n": b(k.N), "e": b(big.NewInt(int64(k.E))), "d": b(k.D),
			"p": b(k.Primes[0]), "q": b(k.Primes[1]), "dp": b(k.Precomputed.Dp), "dq": b(k.Precomputed.Dq), "qi": b(k.Precomputed.Qinv)}, nil
	case *ecdsa.PrivateKey:
		size := (k.Curve.Params().BitSize + 7) / 8
		pad := func(i *big.Int) string { return base64.RawURLEncoding.EncodeToString(i.FillBytes(make([]byte, size))) }
		d, err := k.Bytes()
		if err != nil {
			return nil, err
		}
		pub, err := k.PublicKey.Bytes()
		if err != nil {
			return nil, err
		}
		x, y := new(big.Int).SetBytes(pub[1:1+size]), new(big.Int).SetBytes(pub[1+size:])
		return map[string]any{"kty": "EC", "crv": k.Curve.Params().Name, "x": pad(x), "y": pad(y),
			"d": base64.RawURLEncoding.EncodeToString(d)}, nil
	}
	return nil, errKeyType
}
