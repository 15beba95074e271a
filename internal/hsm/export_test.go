package hsm

import (
	"hash"

	"github.com/miekg/pkcs11"
)

// OAEPUnpad exposes oaepUnpad to the tests.
func OAEPUnpad(hf hash.Hash, em []byte) ([]byte, bool) { return oaepUnpad(hf, em) }

// Classify classifies the PKCS#11 return value code as h would for what.
func Classify(token string, what string, code uint) error {
	return (&HSM{token: token}).classify(what, pkcs11.Error(code))
}
