package directory

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"

	"github.com/customerkey/customerkey/internal/secret"
)

var cryptoRand = rand.Reader

// KDFParams are the argon2id costs for user passwords.
type KDFParams struct {
	Time    uint32
	MemKiB  uint32
	Threads uint8
}

// DefaultKDF follows OWASP's argon2id minimum (19 MiB, 2 passes): memory
// hard, and cheap enough that a two-core server survives a burst of
// sign-ins; repeated failures are throttled by the identity service.
var DefaultKDF = KDFParams{Time: 2, MemKiB: 19 * 1024, Threads: 1}

// Password rules: Entra ID's length bounds.
const (
	minPassword = 8
	maxPassword = 256
)

// hashPassword returns an encoded argon2id hash
// ("$argon2id$v=19$m=…,t=…,p=…$salt$hash") so that costs can be raised
// later without breaking stored hashes.
func hashPassword(p KDFParams, password secret.String, r io.Reader) (string, error) {
	salt := make([]byte, 16)
	if _, err := io.ReadFull(r, salt); err != nil {
		return "", fmt.Errorf("directory: reading random: %w", err)
	}
	pw := []byte(password.Reveal())
	defer secret.Wipe(pw)
	h := argon2.IDKey(pw, salt, p.Time, p.MemKiB, p.Threads, 32)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemKiB, p.Time, p.Threads,
		enc.EncodeToString(salt), enc.EncodeToString(h)), nil
}

var errBadHash = errors.New("directory: malformed password hash")

// checkPassword reports whether password matches the encoded hash.
func checkPassword(encoded string, password secret.String) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return false, errBadHash
	}
	var p KDFParams
	var threads uint32
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemKiB, &p.Time, &threads); err != nil || threads == 0 || threads > 255 {
		return false, errBadHash
	}
	enc := base64.RawStdEncoding
	salt, err1 := enc.DecodeString(parts[4])
	want, err2 := enc.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false, errBadHash
	}
	pw := []byte(password.Reveal())
	defer secret.Wipe(pw)
	got := argon2.IDKey(pw, salt, p.Time, p.MemKiB, uint8(threads), uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// dummyHash is checked against when the user does not exist, so that an
// unknown user costs the same time as a wrong password.
func (d *Directory) dummyCheck(password secret.String) {
	salt := make([]byte, 16)
	pw := []byte(password.Reveal())
	defer secret.Wipe(pw)
	_ = argon2.IDKey(pw, salt, d.kdf.Time, d.kdf.MemKiB, d.kdf.Threads, 32)
}

// Client secrets are 40 random characters: high entropy, so a keyed
// SHA-256 is enough to store them (a memory-hard KDF would only slow down
// every token request). The key is the credential's own id.
func hashClientSecret(keyID string, s string) []byte {
	m := hmac.New(sha256.New, []byte(keyID))
	m.Write([]byte(s))
	return m.Sum(nil)
}

const secretAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"

// newClientSecret returns a secret shaped like Entra ID's: three
// characters, the marker "8Q~", then 34 more.
func newClientSecret(r io.Reader) (string, error) {
	const n = 37
	buf := make([]byte, 0, n)
	var b [1]byte
	// Rejection sampling keeps every character equally likely.
	limit := 256 - 256%len(secretAlphabet)
	for len(buf) < n {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return "", fmt.Errorf("directory: reading random: %w", err)
		}
		if int(b[0]) >= limit {
			continue
		}
		buf = append(buf, secretAlphabet[int(b[0])%len(secretAlphabet)])
	}
	return string(buf[:3]) + "8Q~" + string(buf[3:]), nil
}
