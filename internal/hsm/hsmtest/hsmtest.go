// Package hsmtest gives tests a PKCS#11 token of their own on SoftHSM2.
//
// HSM tests run when CUSTOMERKEY_TEST_PKCS11_MODULE names a PKCS#11 module
// whose token store has a free slot: SoftHSM2, with SOFTHSM2_CONF pointing
// at a scratch token directory (.ci/run sets both). Otherwise they skip and
// say why. Each NewToken initialises a fresh token with random PINs in the
// free slot, so tests do not share login state, keys or the backup and seal
// keys. It also builds what a customer's Bring Your Own Key tool sends
// (TransferBlob) and reads object attributes straight from the token
// (Objects), so tests can check what the token reveals.
//
// It imports hsm and secret; only tests import it.
package hsmtest

import (
	"crypto/aes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/pkcs11"

	"github.com/customerkey/customerkey/internal/hsm"
	"github.com/customerkey/customerkey/internal/secret"
)

// ModuleEnv names the PKCS#11 module HSM tests use.
const ModuleEnv = "CUSTOMERKEY_TEST_PKCS11_MODULE"

// Module returns the module to test with, or skips t saying how to run the
// HSM tests.
func Module(t testing.TB) string {
	t.Helper()
	m := os.Getenv(ModuleEnv)
	if m == "" {
		t.Skipf("HSM test skipped: %s is not set. Install softhsm2, point SOFTHSM2_CONF at a scratch token directory "+
			"and set %s=/usr/lib/softhsm/libsofthsm2.so (.ci/run does this)", ModuleEnv, ModuleEnv)
	}
	if _, err := os.Stat(m); err != nil {
		t.Skipf("HSM test skipped: %s=%s cannot be read: %v", ModuleEnv, m, err)
	}
	return m
}

var (
	mu   sync.Mutex // one token initialisation at a time: they race for the free slot
	ctxs = map[string]*pkcs11.Ctx{}
)

// ctx returns this process's handle on module. The library is initialised
// once per process and never finalised, as package hsm does.
func ctx(t testing.TB, module string) *pkcs11.Ctx {
	t.Helper()
	if p := ctxs[module]; p != nil {
		return p
	}
	p := pkcs11.New(module)
	if p == nil {
		t.Fatalf("hsmtest: cannot load the PKCS#11 module %s", module)
	}
	if err := p.Initialize(); err != nil && err != pkcs11.Error(pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		t.Fatalf("hsmtest: C_Initialize: %v", err)
	}
	ctxs[module] = p
	return p
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// NewToken initialises a fresh token in the module's free slot, with a
// random label and PINs, and returns the Config that opens it. The token is
// deleted with softhsm2-util when the test ends, if that tool is present.
func NewToken(t testing.TB) hsm.Config {
	t.Helper()
	module := Module(t)
	mu.Lock()
	defer mu.Unlock()
	p := ctx(t, module)
	label := "ck-test-" + randomHex(6)
	so, pin := randomHex(8), randomHex(8)
	slots, err := p.GetSlotList(true)
	if err != nil {
		t.Fatalf("hsmtest: C_GetSlotList: %v", err)
	}
	free, ok := uint(0), false
	for _, s := range slots {
		if ti, err := p.GetTokenInfo(s); err == nil && ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED == 0 {
			free, ok = s, true
			break
		}
	}
	if !ok {
		t.Skipf("HSM test skipped: module %s has no free slot to initialise a test token in (SoftHSM2 always has one)", module)
	}
	if err := p.InitToken(free, so, label); err != nil {
		t.Fatalf("hsmtest: C_InitToken: %v", err)
	}
	slot := findSlot(t, p, label)
	sh, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		t.Fatalf("hsmtest: C_OpenSession: %v", err)
	}
	defer p.CloseSession(sh)
	if err := p.Login(sh, pkcs11.CKU_SO, so); err != nil {
		t.Fatalf("hsmtest: C_Login as SO: %v", err)
	}
	if err := p.InitPIN(sh, pin); err != nil {
		t.Fatalf("hsmtest: C_InitPIN: %v", err)
	}
	if err := p.Logout(sh); err != nil {
		t.Fatalf("hsmtest: C_Logout: %v", err)
	}
	t.Cleanup(func() {
		if tool, err := exec.LookPath("softhsm2-util"); err == nil {
			_ = exec.Command(tool, "--delete-token", "--token", label).Run()
		}
	})
	return hsm.Config{Module: module, Token: label, PIN: secret.NewString(pin), MaxSessions: 4}
}

// DeleteToken deletes the token of c behind the back of any process using
// it, as an operator pulling the HSM would; it skips t when softhsm2-util is
// not installed.
func DeleteToken(t testing.TB, c hsm.Config) {
	t.Helper()
	tool, err := exec.LookPath("softhsm2-util")
	if err != nil {
		t.Skip("HSM test skipped: softhsm2-util is needed to remove a token mid-run")
	}
	if out, err := exec.Command(tool, "--delete-token", "--token", c.Token).CombinedOutput(); err != nil {
		t.Fatalf("hsmtest: softhsm2-util --delete-token: %v\n%s", err, out)
	}
}

func findSlot(t testing.TB, p *pkcs11.Ctx, label string) uint {
	t.Helper()
	slots, err := p.GetSlotList(true)
	if err != nil {
		t.Fatalf("hsmtest: C_GetSlotList: %v", err)
	}
	for _, s := range slots {
		if ti, err := p.GetTokenInfo(s); err == nil && ti.Label == label {
			return s
		}
	}
	t.Fatalf("hsmtest: token %q not found after initialising it", label)
	return 0
}

// Object is what the token says about one private or secret key object.
type Object struct {
	ID               []byte
	Label            string
	Class            string // "private key" or "secret key"
	Sensitive        bool
	Extractable      bool
	AlwaysSensitive  bool
	NeverExtractable bool
	// ValueRefusal is the PKCS#11 error name C_GetAttributeValue gave when
	// asked for the key's secret value (CKA_PRIVATE_EXPONENT of RSA keys,
	// CKA_VALUE of EC and AES keys), normally "CKR_ATTRIBUTE_SENSITIVE";
	// empty means the token revealed it.
	ValueRefusal string
}

// Objects lists every private and secret key object of the token of c,
// reading their attributes with C_GetAttributeValue in a session of its
// own (logged in as the user).
func Objects(t testing.TB, c hsm.Config) []Object {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	p := ctx(t, c.Module)
	sh, err := p.OpenSession(findSlot(t, p, c.Token), pkcs11.CKF_SERIAL_SESSION)
	if err != nil {
		t.Fatalf("hsmtest: C_OpenSession: %v", err)
	}
	defer p.CloseSession(sh)
	if err := p.Login(sh, pkcs11.CKU_USER, c.PIN.Reveal()); err != nil && err != pkcs11.Error(pkcs11.CKR_USER_ALREADY_LOGGED_IN) {
		t.Fatalf("hsmtest: C_Login: %v", err)
	}
	var out []Object
	for _, class := range []uint{pkcs11.CKO_PRIVATE_KEY, pkcs11.CKO_SECRET_KEY} {
		if err := p.FindObjectsInit(sh, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, class)}); err != nil {
			t.Fatalf("hsmtest: C_FindObjectsInit: %v", err)
		}
		found, _, err := p.FindObjects(sh, 1000)
		_ = p.FindObjectsFinal(sh)
		if err != nil {
			t.Fatalf("hsmtest: C_FindObjects: %v", err)
		}
		for _, o := range found {
			at, err := p.GetAttributeValue(sh, o, []*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_ID, nil), pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil),
				pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, nil), pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, nil),
				pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, nil), pkcs11.NewAttribute(pkcs11.CKA_ALWAYS_SENSITIVE, nil),
				pkcs11.NewAttribute(pkcs11.CKA_NEVER_EXTRACTABLE, nil)})
			if err != nil {
				t.Fatalf("hsmtest: C_GetAttributeValue: %v", err)
			}
			ob := Object{ID: at[0].Value, Label: string(at[1].Value), Class: "private key", Sensitive: isTrue(at[3].Value),
				Extractable: isTrue(at[4].Value), AlwaysSensitive: isTrue(at[5].Value), NeverExtractable: isTrue(at[6].Value)}
			valueAttr := uint(pkcs11.CKA_VALUE)
			if class == pkcs11.CKO_SECRET_KEY {
				ob.Class = "secret key"
			} else if keyType(at[2].Value) == pkcs11.CKK_RSA {
				valueAttr = pkcs11.CKA_PRIVATE_EXPONENT
			}
			if _, err := p.GetAttributeValue(sh, o, []*pkcs11.Attribute{pkcs11.NewAttribute(valueAttr, nil)}); err != nil {
				ob.ValueRefusal = err.Error()
				if i := strings.LastIndex(ob.ValueRefusal, " "); i >= 0 {
					ob.ValueRefusal = ob.ValueRefusal[i+1:]
				}
			}
			out = append(out, ob)
		}
	}
	return out
}

func isTrue(b []byte) bool { return len(b) == 1 && b[0] != 0 }

// keyType decodes a CK_ULONG attribute, which is in the host's byte order.
func keyType(b []byte) uint {
	switch len(b) {
	case 8:
		return uint(binary.NativeEndian.Uint64(b))
	case 4:
		return uint(binary.NativeEndian.Uint32(b))
	}
	return ^uint(0)
}

// KeyWrapPad is AES key wrap with padding (RFC 5649), as a customer's BYOK
// tool applies it to the target key.
func KeyWrapPad(kek, plaintext []byte) ([]byte, error) {
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	n := (len(plaintext) + 7) / 8
	r := make([]byte, 8+n*8) // A | R[1..n]
	r[0], r[1], r[2], r[3] = 0xA6, 0x59, 0x59, 0xA6
	binary.BigEndian.PutUint32(r[4:8], uint32(len(plaintext)))
	copy(r[8:], plaintext)
	if n == 1 {
		block.Encrypt(r, r)
		return r, nil
	}
	var b [16]byte
	for j := range 6 {
		for i := 1; i <= n; i++ {
			copy(b[:8], r[:8])
			copy(b[8:], r[i*8:i*8+8])
			block.Encrypt(b[:], b[:])
			binary.BigEndian.PutUint64(r[:8], binary.BigEndian.Uint64(b[:8])^uint64(n*j+i))
			copy(r[i*8:], b[8:])
		}
	}
	return r, nil
}

// TransferBlob builds the ciphertext of a Bring Your Own Key transfer of
// target under the key exchange key kek, as Azure's BYOK specification
// describes it: RSA-OAEP (SHA-1) of a fresh AES-256 key under kek, followed
// by the PKCS#8 encoding of target wrapped with KeyWrapPad under that key.
func TransferBlob(kek *rsa.PublicKey, target any) ([]byte, error) {
	pk8, err := x509.MarshalPKCS8PrivateKey(target)
	if err != nil {
		return nil, err
	}
	defer secret.Wipe(pk8)
	aesKey := make([]byte, 32)
	defer secret.Wipe(aesKey)
	_, _ = rand.Read(aesKey)
	head, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, kek, aesKey, nil)
	if err != nil {
		return nil, fmt.Errorf("hsmtest: encrypting the transfer key: %w", err)
	}
	tail, err := KeyWrapPad(aesKey, pk8)
	if err != nil {
		return nil, err
	}
	return append(head, tail...), nil
}

// BYOKFile is the content of the ".byok" file a customer's BYOK tool makes
// for target under the key exchange key kek (public key kekPub, key id
// kid): Azure's key transfer blob JSON, whose base64url encoding is the
// key_hsm of the import request.
func BYOKFile(kid string, kekPub *rsa.PublicKey, target any) ([]byte, error) {
	ct, err := TransferBlob(kekPub, target)
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"schema_version": "1.0.0",
		"header":         map[string]string{"kid": kid, "alg": "dir", "enc": "CKM_RSA_AES_KEY_WRAP"},
		"ciphertext":     base64.RawURLEncoding.EncodeToString(ct),
		"generator":      "customerkey hsmtest",
	})
}

// CloseAllSessions closes every session this process has on the token of
// c (C_CloseAllSessions), which also ends its login: what a token reset or
// a reinsertion does to a running service.
func CloseAllSessions(t testing.TB, c hsm.Config) {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	p := ctx(t, c.Module)
	if err := p.CloseAllSessions(findSlot(t, p, c.Token)); err != nil {
		t.Fatalf("hsmtest: C_CloseAllSessions: %v", err)
	}
}
