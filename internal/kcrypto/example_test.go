package kcrypto_test

import (
	"crypto/rand"
	"fmt"

	"github.com/customerkey/customerkey/internal/jwk"
	"github.com/customerkey/customerkey/internal/kcrypto"
)

// wrapKey and unwrapKey with an RSA key are Encrypt and Decrypt of the key.
func ExampleDecrypt() {
	k, err := kcrypto.GenerateRSA(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	dek := make([]byte, 32)
	if _, err := rand.Read(dek); err != nil {
		panic(err)
	}
	wrapped, err := kcrypto.Encrypt(k.Public(), kcrypto.RSAOAEP256, dek, rand.Reader)
	if err != nil {
		panic(err)
	}
	unwrapped, err := kcrypto.Decrypt(k, kcrypto.RSAOAEP256, wrapped)
	if err != nil {
		panic(err)
	}
	defer unwrapped.Wipe()
	fmt.Println(len(wrapped), unwrapped.Len(), unwrapped)

	_, err = kcrypto.Decrypt(k, kcrypto.RSAOAEP, wrapped)
	fmt.Println(err)
	// Output:
	// 256 32 [secret]
	// decryption failed
}

func ExampleSignatureAlgorithms() {
	fmt.Println(kcrypto.SignatureAlgorithms(jwk.RSA, ""))
	fmt.Println(kcrypto.SignatureAlgorithms(jwk.EC, jwk.P256K))
	fmt.Println(kcrypto.EncryptionAlgorithms(jwk.EC))
	// Output:
	// [PS256 PS384 PS512 RS256 RS384 RS512]
	// [ES256K]
	// []
}
