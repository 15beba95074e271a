package ckapi

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"math/bits"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/httpx"
	"github.com/customerkey/customerkey/internal/secret"
	"github.com/customerkey/customerkey/internal/workload/encryption"
)

// Encryption is the general encryption API; package workload/encryption
// implements it.
type Encryption interface {
	CreateScope(ctx context.Context, c directory.Caller, tenantID string, spec encryption.ScopeSpec) (encryption.Scope, error)
	Scope(ctx context.Context, c directory.Caller, tenantID, name string) (encryption.Scope, error)
	Scopes(ctx context.Context, c directory.Caller, tenantID string) ([]encryption.Scope, error)
	SetPrincipals(ctx context.Context, c directory.Caller, tenantID, name string, principals []string) (encryption.Scope, error)
	DeleteScope(ctx context.Context, c directory.Caller, tenantID, name string) error
	Encrypt(ctx context.Context, c directory.Caller, tenantID, name string, dst, plaintext, aad []byte) ([]byte, error)
	Decrypt(ctx context.Context, c directory.Caller, tenantID, name string, dst, ciphertext, aad []byte) ([]byte, error)
	GenerateDataKey(ctx context.Context, c directory.Caller, tenantID, name string) (secret.Bytes, []byte, error)
	DecryptDataKey(ctx context.Context, c directory.Caller, tenantID, name string, sealed []byte) (secret.Bytes, error)
}

var _ Encryption = (*encryption.Service)(nil)

// Wire names of the encryption API.
const (
	// AADHeader carries the additional data of a raw encrypt or decrypt,
	// base64url.
	AADHeader   = "X-CK-AAD"
	octetStream = "application/octet-stream"
	// maxItemBody bounds a raw or JSON item request: the largest ciphertext
	// in base64url, plus its additional data and the JSON around them.
	maxItemBody = int64(encryption.MaxCiphertextSize+encryption.MaxAADSize)*4/3 + 4<<10
)

// aadHeaderKey is AADHeader in canonical form, to index the header map
// without canonicalizing on every request.
var aadHeaderKey = http.CanonicalHeaderKey(AADHeader)

func (a *API) registerEncryption(route func(string, int64, httpx.HandlerFunc)) {
	const small = 64 << 10
	const base = "/customerkey/v1/tenants/{tenant}/encryption/scopes"
	route("POST "+base, small, a.createScope)
	route("GET "+base, small, a.listScopes)
	route("GET "+base+"/{scope}", small, a.getScope)
	route("DELETE "+base+"/{scope}", small, a.deleteScope)
	route("PUT "+base+"/{scope}/principals", small, a.setPrincipals)
	route("POST "+base+"/{scope}/encrypt", maxItemBody, a.encryptItem)
	route("POST "+base+"/{scope}/decrypt", maxItemBody, a.decryptItem)
	route("POST "+base+"/{scope}/datakey", small, a.generateDataKey)
	route("POST "+base+"/{scope}/datakey/decrypt", small, a.decryptDataKey)
}

type createScopeIn struct {
	Name       string   `json:"name"`
	Principals []string `json:"principals"`
}

func (a *API) createScope(w http.ResponseWriter, r *http.Request) error {
	c, tid, err := a.tenantCaller(r)
	if err != nil {
		return err
	}
	var in createScopeIn
	if err := httpx.DecodeJSON(r, &in); err != nil {
		return err
	}
	sc, err := a.o.Encryption.CreateScope(r.Context(), c, tid, encryption.ScopeSpec{Name: in.Name, Principals: in.Principals})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/customerkey/v1/tenants/"+sc.TenantID+"/encryption/scopes/"+sc.Name)
	return httpx.JSON(w, http.StatusCreated, sc)
}

func (a *API) listScopes(w http.ResponseWriter, r *http.Request) error {
	c, tid, err := a.tenantCaller(r)
	if err != nil {
		return err
	}
	scopes, err := a.o.Encryption.Scopes(r.Context(), c, tid)
	if err != nil {
		return err
	}
	return httpx.JSON(w, http.StatusOK, map[string][]encryption.Scope{"value": scopes})
}

func (a *API) getScope(w http.ResponseWriter, r *http.Request) error {
	c, tid, err := a.tenantCaller(r)
	if err != nil {
		return err
	}
	sc, err := a.o.Encryption.Scope(r.Context(), c, tid, r.PathValue("scope"))
	if err != nil {
		return err
	}
	return httpx.JSON(w, http.StatusOK, sc)
}

func (a *API) deleteScope(w http.ResponseWriter, r *http.Request) error {
	c, tid, err := a.tenantCaller(r)
	if err != nil {
		return err
	}
	if err := a.o.Encryption.DeleteScope(r.Context(), c, tid, r.PathValue("scope")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) setPrincipals(w http.ResponseWriter, r *http.Request) error {
	c, tid, err := a.tenantCaller(r)
	if err != nil {
		return err
	}
	var in struct {
		Principals []string `json:"principals"`
	}
	if err := httpx.DecodeJSON(r, &in); err != nil {
		return err
	}
	sc, err := a.o.Encryption.SetPrincipals(r.Context(), c, tid, r.PathValue("scope"), in.Principals)
	if err != nil {
		return err
	}
	return httpx.JSON(w, http.StatusOK, sc)
}

// itemIn is the JSON form of an encrypt or decrypt request; itemOut of its
// answer. Values are base64url, with or without padding.
type itemIn struct {
	Value string `json:"value"`
	AAD   string `json:"aad,omitempty"`
}

type itemOut struct {
	Value string `json:"value"`
}

// itemOp is Encrypt or Decrypt of the service.
type itemOp func(ctx context.Context, c directory.Caller, tenantID, name string, dst, in, aad []byte) ([]byte, error)

func (a *API) encryptItem(w http.ResponseWriter, r *http.Request) error {
	return a.item(w, r, a.o.Encryption.Encrypt, encryption.MaxItemSize)
}

func (a *API) decryptItem(w http.ResponseWriter, r *http.Request) error {
	return a.item(w, r, a.o.Encryption.Decrypt, encryption.MaxCiphertextSize)
}

// item answers an encrypt or decrypt. The raw form (octet-stream) reads the
// body into a pooled buffer and writes the result from another, without
// JSON: it is the hot path. The JSON form is for clients that cannot send
// raw bodies.
func (a *API) item(w http.ResponseWriter, r *http.Request, op itemOp, maxIn int) error {
	c, tid, err := a.tenantCaller(r)
	if err != nil {
		return err
	}
	scope := r.PathValue("scope")
	ct := r.Header.Get("Content-Type")
	if ct != octetStream {
		mt, _, err := mime.ParseMediaType(ct)
		switch {
		case err == nil && mt == "application/json":
			return a.itemJSON(w, r, c, tid, scope, op)
		case err != nil || mt != octetStream:
			return errkind.New(errkind.Invalid,
				"the body must be the raw item (Content-Type: application/octet-stream, additional data base64url in "+AADHeader+
					") or JSON {\"value\": base64url, \"aad\": base64url} (Content-Type: application/json)").WithCode("UnsupportedMediaType")
		}
	}
	var aad []byte
	if v := r.Header[aadHeaderKey]; len(v) > 0 {
		if aad, err = decodeB64URL(v[0], AADHeader); err != nil {
			return err
		}
	}
	in, err := readBody(r, maxIn)
	if err != nil {
		return err
	}
	defer putBuf(in)
	out := getBuf(len(*in) + encryption.Overhead(len(scope)))
	defer putBuf(out)
	res, err := op(r.Context(), c, tid, scope, (*out)[:0], *in, aad)
	if err != nil {
		return err
	}
	h := w.Header()
	h["Content-Type"] = []string{octetStream}
	h["Content-Length"] = []string{strconv.Itoa(len(res))}
	h["Cache-Control"] = []string{"no-store"}
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(res)
	return err
}

func (a *API) itemJSON(w http.ResponseWriter, r *http.Request, c directory.Caller, tid, scope string, op itemOp) error {
	var in itemIn
	if err := httpx.DecodeJSON(r, &in); err != nil {
		return err
	}
	v, err := decodeB64URL(in.Value, "value")
	if err != nil {
		return err
	}
	aad, err := decodeB64URL(in.AAD, "aad")
	if err != nil {
		return err
	}
	res, err := op(r.Context(), c, tid, scope, nil, v, aad)
	if err != nil {
		return err
	}
	return httpx.JSON(w, http.StatusOK, itemOut{Value: base64.RawURLEncoding.EncodeToString(res)})
}

// decodeB64URL decodes base64url with or without padding.
func decodeB64URL(s, field string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, errkind.Errorf(errkind.Invalid, "%s is not base64url (RFC 4648 §5)", field).WithCode("BadParameter")
	}
	return b, nil
}

func (a *API) generateDataKey(w http.ResponseWriter, r *http.Request) error {
	c, tid, err := a.tenantCaller(r)
	if err != nil {
		return err
	}
	key, wrapped, err := a.o.Encryption.GenerateDataKey(r.Context(), c, tid, r.PathValue("scope"))
	if err != nil {
		return err
	}
	defer key.Wipe()
	return writeKeyJSON(w, key, wrapped)
}

func (a *API) decryptDataKey(w http.ResponseWriter, r *http.Request) error {
	c, tid, err := a.tenantCaller(r)
	if err != nil {
		return err
	}
	var in struct {
		WrappedKey string `json:"wrappedKey"`
	}
	if err := httpx.DecodeJSON(r, &in); err != nil {
		return err
	}
	wrapped, err := decodeB64URL(in.WrappedKey, "wrappedKey")
	if err != nil {
		return err
	}
	key, err := a.o.Encryption.DecryptDataKey(r.Context(), c, tid, r.PathValue("scope"), wrapped)
	if err != nil {
		return err
	}
	defer key.Wipe()
	return writeKeyJSON(w, key, nil)
}

// writeKeyJSON writes the answer to a data key request, {"key": …} (the
// plaintext key, to use and forget) and, when given, "wrappedKey" (to keep
// beside the data), both base64url. It writes from a buffer it wipes
// afterwards, so that the plaintext key does not linger in strings the
// garbage collector frees at leisure; base64url needs no JSON escaping.
func writeKeyJSON(w http.ResponseWriter, key secret.Bytes, wrapped []byte) error {
	enc := base64.RawURLEncoding
	b := make([]byte, 0, 32+enc.EncodedLen(key.Len())+enc.EncodedLen(len(wrapped)))
	b = append(b, `{"key":"`...)
	b = enc.AppendEncode(b, key.Reveal())
	if wrapped != nil {
		b = append(b, `","wrappedKey":"`...)
		b = enc.AppendEncode(b, wrapped)
	}
	b = append(b, "\"}\n"...)
	defer secret.Wipe(b)
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(b)
	return err
}

// ---- pooled body buffers ----

// Buffers come in power-of-two classes from 4 KiB to 8 MiB, which covers
// the largest item body; larger requests are refused before reading.
const (
	minBufShift = 12
	maxBufShift = 23
)

var bufPools [maxBufShift - minBufShift + 1]sync.Pool

// getBuf returns a buffer of length n from the pool of its class.
func getBuf(n int) *[]byte {
	class := 0
	if n > 1<<minBufShift {
		class = bits.Len(uint(n-1)) - minBufShift
	}
	if class >= len(bufPools) {
		b := make([]byte, n)
		return &b
	}
	if p, ok := bufPools[class].Get().(*[]byte); ok {
		*p = (*p)[:n]
		return p
	}
	b := make([]byte, n, 1<<(class+minBufShift))
	return &b
}

// putBuf returns b to the pool of its capacity's class.
func putBuf(b *[]byte) {
	c := cap(*b)
	if c < 1<<minBufShift || c > 1<<maxBufShift || c&(c-1) != 0 {
		return
	}
	bufPools[bits.Len(uint(c))-1-minBufShift].Put(b)
}

// readBody reads the whole body, of at most max bytes, into a pooled
// buffer the caller returns with putBuf.
func readBody(r *http.Request, max int) (*[]byte, error) {
	tooLarge := func() error {
		return errkind.Errorf(errkind.TooLarge, "the body is larger than %d bytes, the most this operation takes", max).WithCode("ItemTooLarge")
	}
	if r.ContentLength > int64(max) {
		return nil, tooLarge()
	}
	if r.ContentLength >= 0 {
		b := getBuf(int(r.ContentLength))
		if _, err := io.ReadFull(r.Body, *b); err != nil {
			putBuf(b)
			return nil, bodyError(err)
		}
		return b, nil
	}
	// Unknown length (chunked): grow through the classes.
	b := getBuf(1 << minBufShift)
	n := 0
	for {
		if n == len(*b) {
			if n > max {
				putBuf(b)
				return nil, tooLarge()
			}
			nb := getBuf(2 * n)
			copy(*nb, (*b)[:n])
			putBuf(b)
			b = nb
		}
		m, err := r.Body.Read((*b)[n:])
		n += m
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			putBuf(b)
			return nil, bodyError(err)
		}
	}
	if n > max {
		putBuf(b)
		return nil, tooLarge()
	}
	*b = (*b)[:n]
	return b, nil
}

func bodyError(err error) error {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return httpx.ErrBodyTooLarge
	}
	return errkind.Wrap(errkind.Invalid, "the request body could not be read completely", err)
}
