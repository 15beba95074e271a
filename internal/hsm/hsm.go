// Package hsm owns the hardware security module: one PKCS#11 module, one
// token found by its label, and a pool of logged-in sessions over it. It
// creates and uses the objects the service keeps in the HSM: the key pairs
// of -HSM key versions (generated inside, imported in plaintext, or
// unwrapped from a customer's Bring Your Own Key transfer blob), the AES
// backup key that key backups are wrapped under, the AES seal key the
// store's barrier seals its keyring with, and the AES keys of
// GenerateSecretKey (the availability keys of data encryption policies). Private and secret keys are
// created sensitive, so their value never leaves the token in the clear.
//
// Objects are named by a random CKA_ID that callers keep; a key's id is all
// the store needs to use it again. Every failure is an errkind error that
// says what went wrong in PKCS#11 terms (the CKR_ code) and what to do; no
// error, log or panic carries a PIN or key material.
//
// Sessions: a token admits a limited number of sessions and is the slow part
// of every private-key operation, so operations borrow a session from a
// bounded pool (Config.MaxSessions) and wait for one when all are busy. One
// extra session stays open for the life of the HSM value so that the login,
// which PKCS#11 keeps per application and token, outlives idle periods. A
// session the token invalidated (CKR_SESSION_HANDLE_INVALID, a removed and
// reinserted token, a logout) is dropped, the token is looked up again by
// label, the login repeated, and the operation retried once, unless it
// creates or destroys objects, where a retry could leave a duplicate.
//
// Memory: miekg/pkcs11 copies attribute values and plaintexts through C
// memory that it frees without clearing; the Go copies are wiped here. That
// matters for a plaintext import and for decrypted keys, never for keys the
// HSM generated.
//
// It imports secret and errkind, and kcrypto and jwk of its own level (the
// Azure Key Vault algorithm and curve names); never net/http or storage.
package hsm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/miekg/pkcs11"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/secret"
)

// PINEnv is the environment variable the PIN may come from instead of a
// file.
const PINEnv = "CUSTOMERKEY_HSM_PIN"

// Config says which HSM to use.
type Config struct {
	// Module is the absolute path of the vendor's PKCS#11 library, for
	// SoftHSM2 /usr/lib/softhsm/libsofthsm2.so.
	Module string
	// Token is the label of the token to use.
	Token string
	// PIN is the token's user PIN.
	PIN secret.String
	// MaxSessions bounds the sessions open for operations; 0 means twice
	// GOMAXPROCS (at least 4), lowered to what the token admits.
	MaxSessions int
}

// Check reports what is missing or wrong in c, every problem at once.
func (c Config) Check() error {
	var errs []error
	if c.Module == "" {
		errs = append(errs, errors.New("hsm-module: the path of the PKCS#11 library is required"))
	} else if !filepath.IsAbs(c.Module) {
		errs = append(errs, fmt.Errorf("hsm-module: %q must be an absolute path", c.Module))
	}
	if c.Token == "" {
		errs = append(errs, errors.New("hsm-token: the token label is required"))
	}
	if c.PIN.IsZero() {
		errs = append(errs, fmt.Errorf("hsm-pin-file: the user PIN is required: give hsm-pin-file or set %s", PINEnv))
	}
	if c.MaxSessions < 0 {
		errs = append(errs, fmt.Errorf("hsm-max-sessions: %d must not be negative", c.MaxSessions))
	}
	if len(errs) == 0 {
		return nil
	}
	return errkind.Wrap(errkind.Invalid, "hsm: the HSM configuration is incomplete: "+errors.Join(errs...).Error(), errors.Join(errs...))
}

// ReadPIN returns the PIN from the file at path, or, when path is empty,
// from the environment variable PINEnv. A trailing newline is dropped. The
// file must not be readable by others.
func ReadPIN(path string) (secret.String, error) {
	if path == "" {
		v, ok := os.LookupEnv(PINEnv)
		if !ok || v == "" {
			return secret.String{}, errkind.Errorf(errkind.FailedPrecondition,
				"hsm: no PIN: set hsm-pin-file to a file holding the token's user PIN, or set %s", PINEnv)
		}
		return secret.NewString(v), nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return secret.String{}, errkind.Wrap(errkind.FailedPrecondition, fmt.Sprintf("hsm: cannot read the PIN file %s", path), err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return secret.String{}, errkind.Errorf(errkind.FailedPrecondition,
			"hsm: the PIN file %s has mode %04o, so other users may read it; run `chmod 600 %s` as its owner", path, perm, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return secret.String{}, errkind.Wrap(errkind.FailedPrecondition, fmt.Sprintf("hsm: cannot read the PIN file %s", path), err)
	}
	pin := strings.TrimRight(string(b), "\r\n")
	secret.Wipe(b)
	if pin == "" {
		return secret.String{}, errkind.Errorf(errkind.FailedPrecondition, "hsm: the PIN file %s is empty", path)
	}
	return secret.NewString(pin), nil
}

// modules holds every PKCS#11 library this process loaded. C_Initialize is
// process-wide: a second one answers CKR_CRYPTOKI_ALREADY_INITIALIZED, and
// C_Finalize would end the sessions of every other user of the library in
// the process. So a library is loaded and initialised once and stays so
// until the process exits; HSM values share it.
var modules struct {
	sync.Mutex
	m map[string]*pkcs11.Ctx
}

func loadModule(path string) (*pkcs11.Ctx, error) {
	modules.Lock()
	defer modules.Unlock()
	if p := modules.m[path]; p != nil {
		return p, nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, errkind.Wrap(errkind.FailedPrecondition, fmt.Sprintf("hsm: the PKCS#11 module %s cannot be read; "+
			"install the HSM vendor's library there or correct hsm-module (SoftHSM2: apt-get install softhsm2, "+
			"then /usr/lib/softhsm/libsofthsm2.so)", path), err)
	}
	if !fi.Mode().IsRegular() {
		return nil, errkind.Errorf(errkind.FailedPrecondition, "hsm: the PKCS#11 module %s is not a regular file; correct hsm-module", path)
	}
	p := pkcs11.New(path)
	if p == nil {
		return nil, errkind.Errorf(errkind.FailedPrecondition, "hsm: %s is not a loadable PKCS#11 library (dlopen or "+
			"C_GetFunctionList failed); correct hsm-module to the vendor's PKCS#11 module", path)
	}
	if err := p.Initialize(); err != nil && !isCode(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		p.Destroy()
		return nil, errkind.Wrap(errkind.FailedPrecondition, fmt.Sprintf("hsm: C_Initialize of %s failed (%v); check "+
			"the library's own configuration (SoftHSM2: SOFTHSM2_CONF and its tokendir)", path, err), err)
	}
	if modules.m == nil {
		modules.m = map[string]*pkcs11.Ctx{}
	}
	modules.m[path] = p
	return p, nil
}

// HSM is an open token. It is safe for concurrent use.
type HSM struct {
	p     *pkcs11.Ctx
	token string
	pin   secret.String
	mechs map[uint]bool

	sem  chan struct{} // one token per session that may be in use
	done chan struct{} // closed by Close

	mu      sync.Mutex
	slot    atomic.Uint64        // the token's slot; read without mu by classify
	anchor  pkcs11.SessionHandle // keeps the login; never lent out
	idle    []pkcs11.SessionHandle
	gen     uint64 // bumped by every reconnect; sessions of older generations are closed
	handles map[handleKey]pkcs11.ObjectHandle
	closed  bool

	setup sync.Mutex        // serialises creating the backup and seal keys
	named map[string][]byte // label -> CKA_ID of the backup and seal keys, once known

	// oaep256Raw is set once the token refused RSA-OAEP with SHA-256 as a
	// mechanism parameter: OAEP-256 then runs as raw RSA in the token with
	// the padding checked here (see decryptOAEPRaw).
	oaep256Raw atomic.Bool
}

type handleKey struct {
	class uint
	id    string
}

type session struct {
	h   pkcs11.SessionHandle
	gen uint64
}

// Mechanisms the service cannot work without, and those some operations
// need (their absence refuses only those operations, with a clear error).
var (
	requiredMechs = []uint{pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, pkcs11.CKM_RSA_PKCS, pkcs11.CKM_RSA_PKCS_OAEP,
		pkcs11.CKM_AES_KEY_GEN, pkcs11.CKM_AES_KEY_WRAP_PAD, pkcs11.CKM_AES_GCM}
	mechNames = map[uint]string{pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN: "CKM_RSA_PKCS_KEY_PAIR_GEN", pkcs11.CKM_RSA_PKCS: "CKM_RSA_PKCS",
		pkcs11.CKM_RSA_PKCS_OAEP: "CKM_RSA_PKCS_OAEP", pkcs11.CKM_AES_KEY_GEN: "CKM_AES_KEY_GEN",
		pkcs11.CKM_AES_KEY_WRAP_PAD: "CKM_AES_KEY_WRAP_PAD", pkcs11.CKM_AES_GCM: "CKM_AES_GCM",
		pkcs11.CKM_RSA_PKCS_PSS: "CKM_RSA_PKCS_PSS", pkcs11.CKM_RSA_X_509: "CKM_RSA_X_509",
		pkcs11.CKM_EC_KEY_PAIR_GEN: "CKM_EC_KEY_PAIR_GEN", pkcs11.CKM_ECDSA: "CKM_ECDSA"}
)

// Open loads the module, finds the token by its label, logs in with the
// PIN and checks the mechanisms the service needs. The errors say which of
// these failed: a missing or unloadable module, no token of that label (the
// labels present are listed), an uninitialised or locked PIN, a wrong PIN
// (CKR_PIN_INCORRECT; every wrong attempt counts toward the token's
// lockout, so the PIN is tried once and never again by this value).
func Open(ctx context.Context, c Config) (*HSM, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := loadModule(c.Module)
	if err != nil {
		return nil, err
	}
	h := &HSM{p: p, token: c.Token, pin: c.PIN, handles: map[handleKey]pkcs11.ObjectHandle{}}
	slot, info, err := h.findToken()
	if err != nil {
		return nil, err
	}
	switch {
	case info.Flags&pkcs11.CKF_USER_PIN_INITIALIZED == 0:
		return nil, errkind.Errorf(errkind.FailedPrecondition, "hsm: token %q has no user PIN yet; its security officer "+
			"must set one (SoftHSM2: softhsm2-util --init-token sets both)", c.Token)
	case info.Flags&pkcs11.CKF_USER_PIN_LOCKED != 0:
		return nil, errkind.Errorf(errkind.FailedPrecondition, "hsm: the user PIN of token %q is locked after too many "+
			"wrong attempts; the token's security officer must unlock it", c.Token)
	}
	mechs, err := p.GetMechanismList(slot)
	if err != nil {
		return nil, h.classify("listing the token's mechanisms", err)
	}
	h.mechs = map[uint]bool{}
	for _, m := range mechs {
		h.mechs[m.Mechanism] = true
	}
	var missing []string
	for _, m := range requiredMechs {
		if !h.mechs[m] {
			missing = append(missing, mechNames[m])
		}
	}
	if len(missing) > 0 {
		return nil, errkind.Errorf(errkind.FailedPrecondition, "hsm: token %q lacks mechanisms the service needs: %s",
			c.Token, strings.Join(missing, ", "))
	}
	h.slot.Store(uint64(slot))
	if err := h.login(); err != nil {
		return nil, err
	}
	h.sem = make(chan struct{}, maxSessions(c.MaxSessions, info))
	h.done = make(chan struct{})
	return h, nil
}

func maxSessions(want int, info pkcs11.TokenInfo) int {
	n := want
	if n == 0 {
		n = max(4, 2*runtime.GOMAXPROCS(0))
	}
	// 0 and ~0 mean "no limit" and "unknown"; otherwise leave room for the
	// anchor session.
	if lim := info.MaxRwSessionCount; lim > 1 && lim < 1<<20 && uint(n) >= lim {
		n = int(lim) - 1
	}
	return n
}

// findToken looks the token up by label among the slots with a token.
func (h *HSM) findToken() (uint, pkcs11.TokenInfo, error) {
	slots, err := h.p.GetSlotList(true)
	if err != nil {
		return 0, pkcs11.TokenInfo{}, h.classify("listing the slots", err)
	}
	var labels []string
	for _, s := range slots {
		ti, err := h.p.GetTokenInfo(s)
		if err != nil {
			continue // a token going away; not ours to report
		}
		if ti.Label == h.token {
			return s, ti, nil
		}
		if ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED != 0 {
			labels = append(labels, fmt.Sprintf("%q", ti.Label))
		}
	}
	slices.Sort(labels)
	found := "none"
	if len(labels) > 0 {
		found = strings.Join(labels, ", ")
	}
	return 0, pkcs11.TokenInfo{}, errkind.Errorf(errkind.Unavailable, "hsm: no token labelled %q is present (tokens "+
		"present: %s); correct hsm-token, or connect the HSM holding it", h.token, found).WithCode("HSMUnavailable")
}

// login opens the anchor session on h.slot and logs in. The caller holds
// h.mu or owns h exclusively.
func (h *HSM) login() error {
	sh, err := h.p.OpenSession(h.slotNow(), pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return h.classify("opening a session", err)
	}
	err = h.p.Login(sh, pkcs11.CKU_USER, h.pin.Reveal())
	if err != nil && !isCode(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN) {
		_ = h.p.CloseSession(sh)
		return h.classify("logging in", err)
	}
	h.anchor = sh
	return nil
}

// Close closes the sessions once the operations running on them are done.
// The module stays loaded (see modules). It is safe to call more than once.
func (h *HSM) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	close(h.done)
	h.mu.Unlock()
	for range cap(h.sem) { // wait for every borrowed session to come back
		h.sem <- struct{}{}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.idle {
		_ = h.p.CloseSession(s)
	}
	h.idle = nil
	// Closing the last session of the application on the token ends its
	// login; other HSM values on the same token keep theirs through their
	// own anchor. C_Logout is never called: it would log them out too.
	_ = h.p.CloseSession(h.anchor)
	return nil
}

var errClosed = errkind.New(errkind.Unavailable, "hsm: the HSM connection is closed").WithCode("HSMUnavailable")

// acquire borrows a session, waiting for one while MaxSessions are in use.
func (h *HSM) acquire(ctx context.Context) (session, error) {
	select {
	case h.sem <- struct{}{}:
	case <-h.done:
		return session{}, errClosed
	case <-ctx.Done():
		return session{}, errkind.Wrap(errkind.Unavailable, "hsm: gave up waiting for a free HSM session", ctx.Err())
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		<-h.sem
		return session{}, errClosed
	}
	gen := h.gen
	if n := len(h.idle); n > 0 {
		s := h.idle[n-1]
		h.idle = h.idle[:n-1]
		h.mu.Unlock()
		return session{h: s, gen: gen}, nil
	}
	slot := h.slotNow()
	h.mu.Unlock()
	sh, err := h.p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		<-h.sem
		return session{gen: gen}, err // classified by the caller, which may reconnect
	}
	return session{h: sh, gen: gen}, nil
}

// release gives s back; broken sessions and those of an older generation
// are closed instead.
func (h *HSM) release(s session, broken bool) {
	h.mu.Lock()
	keep := !broken && !h.closed && s.gen == h.gen
	if keep {
		h.idle = append(h.idle, s.h)
	}
	h.mu.Unlock()
	if !keep {
		_ = h.p.CloseSession(s.h)
	}
	<-h.sem
}

// sessionLost reports whether err means the session, the login or the
// token went away, so that reconnecting may help.
func sessionLost(err error) bool {
	for _, c := range []uint{pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_SESSION_CLOSED, pkcs11.CKR_DEVICE_REMOVED,
		pkcs11.CKR_TOKEN_NOT_PRESENT, pkcs11.CKR_USER_NOT_LOGGED_IN, pkcs11.CKR_DEVICE_ERROR, pkcs11.CKR_SLOT_ID_INVALID,
		pkcs11.CKR_TOKEN_NOT_RECOGNIZED} {
		if isCode(err, c) {
			return true
		}
	}
	return false
}

// reconnect finds the token again (it may sit in another slot after being
// reinserted), logs in on a new anchor session and forgets every session
// and object handle of the previous generation. Callers that saw a failure
// in generation gen call it; only the first of them reconnects.
func (h *HSM) reconnect(gen uint64) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return errClosed
	}
	if h.gen != gen {
		return nil // another operation reconnected already
	}
	for _, s := range h.idle {
		_ = h.p.CloseSession(s)
	}
	h.idle = nil
	_ = h.p.CloseSession(h.anchor)
	slot, _, err := h.findToken()
	if err != nil {
		return err
	}
	h.slot.Store(uint64(slot))
	h.gen++
	clear(h.handles)
	return h.login()
}

// do runs fn on a borrowed session. When the session, login or token was
// lost, it reconnects, and runs fn once more on a new session if retry is
// set or the token refused the call before doing anything (an invalid
// session, a lost login); operations that create or destroy objects pass
// retry false, because after other failures they may have done their work.
func (h *HSM) do(ctx context.Context, what string, retry bool, fn func(sh pkcs11.SessionHandle) error) error {
	for attempt := 0; ; attempt++ {
		s, err := h.acquire(ctx)
		if err != nil {
			if _, ok := errkind.As(err); ok {
				return err
			}
			if attempt == 0 && sessionLost(err) {
				if rerr := h.reconnect(s.gen); rerr != nil {
					return rerr
				}
				continue
			}
			return h.classify(what, err)
		}
		err = fn(s.h)
		lost := err != nil && sessionLost(err)
		h.release(s, lost)
		if !lost {
			return err
		}
		rerr := h.reconnect(s.gen)
		if attempt > 0 || !(retry || refusedUpFront(err)) {
			return h.classify(what, err)
		}
		if rerr != nil {
			return rerr
		}
	}
}

// refusedUpFront reports whether err is one a token returns before it
// starts on a call: repeating the call cannot do its work twice.
func refusedUpFront(err error) bool {
	return isCode(err, pkcs11.CKR_SESSION_HANDLE_INVALID) || isCode(err, pkcs11.CKR_SESSION_CLOSED) ||
		isCode(err, pkcs11.CKR_USER_NOT_LOGGED_IN)
}

func (h *HSM) slotNow() uint { return uint(h.slot.Load()) }

// tokenReadable reports whether the token answers C_GetTokenInfo.
func (h *HSM) tokenReadable() bool {
	if h.p == nil {
		return false
	}
	_, err := h.p.GetTokenInfo(h.slotNow())
	return err == nil
}

// isCode reports whether err is the PKCS#11 return value code.
func isCode(err error, code uint) bool {
	var e pkcs11.Error
	return errors.As(err, &e) && uint(e) == code
}

// classify turns a PKCS#11 failure while doing what into an errkind error
// that says what to do about it. Errors already classified pass through.
func (h *HSM) classify(what string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := errkind.As(err); ok {
		return err
	}
	var e pkcs11.Error
	if !errors.As(err, &e) {
		return errkind.Wrap(errkind.Internal, "hsm: "+what+" failed", err)
	}
	switch uint(e) {
	case pkcs11.CKR_PIN_INCORRECT:
		return errkind.Wrap(errkind.FailedPrecondition, fmt.Sprintf("hsm: token %q refused the PIN (CKR_PIN_INCORRECT); "+
			"correct hsm-pin-file or %s and restart. Every wrong attempt counts toward the token's lockout, so the "+
			"PIN is not tried again", h.token, PINEnv), err).WithCode("HSMLoginFailed")
	case pkcs11.CKR_PIN_LOCKED:
		return errkind.Wrap(errkind.FailedPrecondition, fmt.Sprintf("hsm: the user PIN of token %q is locked "+
			"(CKR_PIN_LOCKED); the token's security officer must unlock it", h.token), err).WithCode("HSMLoginFailed")
	case pkcs11.CKR_PIN_EXPIRED, pkcs11.CKR_PIN_LEN_RANGE, pkcs11.CKR_PIN_INVALID:
		return errkind.Wrap(errkind.FailedPrecondition, fmt.Sprintf("hsm: token %q did not accept the PIN (%v); check "+
			"hsm-pin-file or %s", h.token, e, PINEnv), err).WithCode("HSMLoginFailed")
	case pkcs11.CKR_DEVICE_MEMORY:
		return errkind.Wrap(errkind.Unavailable, fmt.Sprintf("hsm: token %q is full (CKR_DEVICE_MEMORY) while %s; no "+
			"key was created. Purge deleted keys that are no longer needed, or give the token more room", h.token, what), err).
			WithCode("HSMFull")
	case pkcs11.CKR_SESSION_COUNT:
		return errkind.Wrap(errkind.Unavailable, fmt.Sprintf("hsm: token %q admits no more sessions (CKR_SESSION_COUNT) "+
			"while %s; lower hsm-max-sessions or stop other applications using the token", h.token, what), err).
			WithCode("HSMUnavailable")
	case pkcs11.CKR_MECHANISM_INVALID, pkcs11.CKR_MECHANISM_PARAM_INVALID:
		return errkind.Wrap(errkind.Invalid, fmt.Sprintf("hsm: token %q does not support the mechanism needed while %s (%v)",
			h.token, what, e), err).WithCode("BadParameter")
	}
	// CKR_GENERAL_ERROR is what SoftHSM2 answers once its token is gone;
	// asking for the token's information tells that apart from a failure
	// of the operation itself.
	general := isCode(err, pkcs11.CKR_GENERAL_ERROR) && !h.tokenReadable()
	if sessionLost(err) || general || isCode(err, pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED) {
		return errkind.Wrap(errkind.Unavailable, fmt.Sprintf("hsm: token %q is not reachable while %s (%v); check that "+
			"the HSM is connected and the token present: the service reconnects on the next operation", h.token, what, e), err).
			WithCode("HSMUnavailable")
	}
	return errkind.Wrap(errkind.Internal, fmt.Sprintf("hsm: %s failed (%v)", what, e), err)
}
