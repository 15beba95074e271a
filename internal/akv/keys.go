package akv

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/httpx"
	"github.com/customerkey/customerkey/internal/jwk"
	"github.com/customerkey/customerkey/internal/vault"
)

// Keys is what this surface needs of package vault.
type Keys interface {
	Vault(ctx context.Context, name string) (vault.Vault, error)
	CreateKey(ctx context.Context, c directory.Caller, v, name string, spec vault.KeySpec) (vault.Key, error)
	ImportKey(ctx context.Context, c directory.Caller, v, name string, in vault.KeyImport) (vault.Key, error)
	GetKey(ctx context.Context, v, name, version string) (vault.Key, error)
	ListKeys(ctx context.Context, v, after string, max int) (vault.KeyPage, error)
	ListKeyVersions(ctx context.Context, v, name, after string, max int) (vault.KeyPage, error)
	ListDeletedKeys(ctx context.Context, v, after string, max int) (vault.KeyPage, error)
	UpdateKey(ctx context.Context, c directory.Caller, v, name, version string, u vault.KeyUpdate) (vault.Key, error)
	DeleteKey(ctx context.Context, c directory.Caller, v, name string) (vault.Key, error)
	GetDeletedKey(ctx context.Context, v, name string) (vault.Key, error)
	RecoverDeletedKey(ctx context.Context, c directory.Caller, v, name string) (vault.Key, error)
	PurgeDeletedKey(ctx context.Context, c directory.Caller, v, name string) error
	BackupKey(ctx context.Context, v, name string) ([]byte, error)
	RestoreKey(ctx context.Context, c directory.Caller, v string, blob []byte) (vault.Key, error)
	Encrypt(ctx context.Context, v, name, version, alg string, plaintext []byte) (vault.OpResult, error)
	Decrypt(ctx context.Context, v, name, version, alg string, ciphertext []byte) (vault.PlainResult, error)
	WrapKey(ctx context.Context, v, name, version, alg string, key []byte) (vault.OpResult, error)
	UnwrapKey(ctx context.Context, v, name, version, alg string, wrapped []byte) (vault.PlainResult, error)
	Sign(ctx context.Context, v, name, version, alg string, digest []byte) (vault.OpResult, error)
	Verify(ctx context.Context, v, name, version, alg string, digest, signature []byte) (vault.VerifyResult, error)
	RotateKey(ctx context.Context, c directory.Caller, v, name string) (vault.Key, error)
	GetRotationPolicy(ctx context.Context, v, name string) (vault.RotationPolicy, error)
	SetRotationPolicy(ctx context.Context, c directory.Caller, v, name string, p vault.RotationPolicy) (vault.RotationPolicy, error)
}

// b64 is AKV's byte encoding: base64url without padding.
var b64 = base64.RawURLEncoding

// bytesField decodes a base64url field; SDKs send it unpadded, some tools
// pad it.
func bytesField(name, s string) ([]byte, error) {
	b, err := b64.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, errkind.Errorf(errkind.Invalid, "The field %s is not valid base64url.", name).WithCode("BadParameter")
	}
	return b, nil
}

// baseURL is the vault's URL as the client addressed it.
func baseURL(r *http.Request) string { return "https://" + r.Host }

func kid(r *http.Request, ref vault.KeyRef) string {
	u := baseURL(r) + "/keys/" + url.PathEscape(ref.Name)
	if ref.Version != "" {
		u += "/" + ref.Version
	}
	return u
}

type attributesOut struct {
	Enabled         bool   `json:"enabled"`
	NotBefore       *int64 `json:"nbf,omitempty"`
	Expires         *int64 `json:"exp,omitempty"`
	Created         int64  `json:"created"`
	Updated         int64  `json:"updated"`
	RecoveryLevel   string `json:"recoveryLevel"`
	RecoverableDays int    `json:"recoverableDays"`
	Exportable      bool   `json:"exportable"`
	HSMPlatform     string `json:"hsmPlatform,omitempty"`
}

func unixPtr(t *time.Time) *int64 {
	if t == nil {
		return nil
	}
	u := t.Unix()
	return &u
}

func attributesJSON(a vault.KeyAttributes) attributesOut {
	return attributesOut{Enabled: a.Enabled, NotBefore: unixPtr(a.NotBefore), Expires: unixPtr(a.Expires), Created: a.Created.Unix(),
		Updated: a.Updated.Unix(), RecoveryLevel: a.RecoveryLevel, RecoverableDays: a.RecoverableDays, Exportable: a.Exportable,
		HSMPlatform: a.HSMPlatform}
}

type keyBundle struct {
	Key                jwk.Key           `json:"key"`
	Attributes         attributesOut     `json:"attributes"`
	Tags               map[string]string `json:"tags,omitempty"`
	RecoveryID         string            `json:"recoveryId,omitempty"`
	DeletedDate        *int64            `json:"deletedDate,omitempty"`
	ScheduledPurgeDate *int64            `json:"scheduledPurgeDate,omitempty"`
}

type keyItem struct {
	KID                string            `json:"kid"`
	Attributes         attributesOut     `json:"attributes"`
	Tags               map[string]string `json:"tags,omitempty"`
	Managed            bool              `json:"managed,omitempty"`
	RecoveryID         string            `json:"recoveryId,omitempty"`
	DeletedDate        *int64            `json:"deletedDate,omitempty"`
	ScheduledPurgeDate *int64            `json:"scheduledPurgeDate,omitempty"`
}

func deletion(r *http.Request, p vault.KeyProperties) (string, *int64, *int64) {
	if p.Deleted == nil {
		return "", nil, nil
	}
	d := p.Deleted.DeletedDate.Unix()
	if p.Deleted.ScheduledPurgeDate.IsZero() {
		return "", &d, nil
	}
	s := p.Deleted.ScheduledPurgeDate.Unix()
	return baseURL(r) + "/deletedkeys/" + url.PathEscape(p.Ref.Name), &d, &s
}

func bundleJSON(r *http.Request, k vault.Key) keyBundle {
	key := k.JWK.Strip()
	key.KID = kid(r, k.Ref)
	out := keyBundle{Key: key, Attributes: attributesJSON(k.Attributes), Tags: k.Tags}
	out.RecoveryID, out.DeletedDate, out.ScheduledPurgeDate = deletion(r, k.KeyProperties)
	return out
}

func itemJSON(r *http.Request, p vault.KeyProperties) keyItem {
	out := keyItem{KID: kid(r, p.Ref), Attributes: attributesJSON(p.Attributes), Tags: p.Tags, Managed: p.Managed}
	out.RecoveryID, out.DeletedDate, out.ScheduledPurgeDate = deletion(r, p)
	return out
}

type attributesIn struct {
	Enabled    *bool  `json:"enabled"`
	NotBefore  *int64 `json:"nbf"`
	Expires    *int64 `json:"exp"`
	Exportable *bool  `json:"exportable"`
}

func timePtr(u *int64) *time.Time {
	if u == nil {
		return nil
	}
	t := time.Unix(*u, 0).UTC()
	return &t
}

// decode reads a JSON body. AKV ignores fields it does not know.
func decode(r *http.Request, v any) error {
	if r.Header.Get("Content-Type") == "" && r.ContentLength != 0 {
		return errkind.New(errkind.Invalid, "The request has a body but no Content-Type; send application/json.").WithCode("BadParameter")
	}
	if err := httpx.DecodeJSONLenient(r, v); err != nil {
		return errkind.Wrap(errkind.Invalid, errkind.Public(err), err).WithCode("BadParameter")
	}
	return nil
}

// dispatch runs the operation of an authorized request.
func (a *API) dispatch(r *http.Request, req *request) (response, error) {
	ctx, c, v, t := r.Context(), req.p.Caller(), req.vault.Name, req.t
	bundle := func(k vault.Key, err error) (response, error) {
		if err != nil {
			return response{}, err
		}
		return response{status: http.StatusOK, body: bundleJSON(r, k)}, nil
	}
	switch t.op {
	case opCreate:
		var in struct {
			Kty            string            `json:"kty"`
			KeySize        int               `json:"key_size"`
			PublicExponent int               `json:"public_exponent"`
			KeyOps         []string          `json:"key_ops"`
			Attributes     attributesIn      `json:"attributes"`
			Tags           map[string]string `json:"tags"`
			Crv            string            `json:"crv"`
		}
		if err := decode(r, &in); err != nil {
			return response{}, err
		}
		spec := vault.KeySpec{Type: in.Kty, Size: in.KeySize, PublicExponent: in.PublicExponent, Curve: in.Crv, Ops: in.KeyOps,
			Enabled: in.Attributes.Enabled, NotBefore: timePtr(in.Attributes.NotBefore), Expires: timePtr(in.Attributes.Expires),
			Exportable: in.Attributes.Exportable != nil && *in.Attributes.Exportable, Tags: in.Tags}
		return bundle(a.o.Keys.CreateKey(ctx, c, v, t.name, spec))
	case opImport:
		var in struct {
			Key        jwk.Key           `json:"key"`
			HSM        bool              `json:"Hsm"`
			Attributes attributesIn      `json:"attributes"`
			Tags       map[string]string `json:"tags"`
		}
		// The private members are ours to wipe once the vault has them
		// (or once decoding failed after they were read).
		defer in.Key.Wipe()
		if err := decode(r, &in); err != nil {
			return response{}, err
		}
		spec := vault.KeyImport{Key: in.Key, HSM: in.HSM, Enabled: in.Attributes.Enabled, NotBefore: timePtr(in.Attributes.NotBefore),
			Expires: timePtr(in.Attributes.Expires), Exportable: in.Attributes.Exportable != nil && *in.Attributes.Exportable, Tags: in.Tags}
		return bundle(a.o.Keys.ImportKey(ctx, c, v, t.name, spec))
	case opGet:
		return bundle(a.o.Keys.GetKey(ctx, v, t.name, t.version))
	case opUpdate:
		var in struct {
			KeyOps     []string          `json:"key_ops"`
			Attributes *attributesIn     `json:"attributes"`
			Tags       map[string]string `json:"tags"`
		}
		if err := decode(r, &in); err != nil {
			return response{}, err
		}
		u := vault.KeyUpdate{Ops: in.KeyOps, Tags: in.Tags}
		if at := in.Attributes; at != nil {
			u.Enabled, u.NotBefore, u.Expires = at.Enabled, timePtr(at.NotBefore), timePtr(at.Expires)
		}
		return bundle(a.o.Keys.UpdateKey(ctx, c, v, t.name, t.version, u))
	case opDelete:
		return bundle(a.o.Keys.DeleteKey(ctx, c, v, t.name))
	case opGetDeleted:
		return bundle(a.o.Keys.GetDeletedKey(ctx, v, t.name))
	case opRecover:
		return bundle(a.o.Keys.RecoverDeletedKey(ctx, c, v, t.name))
	case opPurge:
		if err := a.o.Keys.PurgeDeletedKey(ctx, c, v, t.name); err != nil {
			return response{}, err
		}
		return response{status: http.StatusNoContent}, nil
	case opRotate:
		return bundle(a.o.Keys.RotateKey(ctx, c, v, t.name))
	case opList, opListDeleted, opListVersions:
		return a.list(r, req)
	case opBackup:
		blob, err := a.o.Keys.BackupKey(ctx, v, t.name)
		if err != nil {
			return response{}, err
		}
		return response{status: http.StatusOK, body: map[string]string{"value": b64.EncodeToString(blob)}}, nil
	case opRestore:
		var in struct {
			Value string `json:"value"`
		}
		if err := decode(r, &in); err != nil {
			return response{}, err
		}
		blob, err := bytesField("value", in.Value)
		if err != nil {
			return response{}, err
		}
		return bundle(a.o.Keys.RestoreKey(ctx, c, v, blob))
	case opEncrypt, opDecrypt, opWrap, opUnwrap, opSign, opVerify:
		return a.crypto(r, req)
	case opGetPolicy:
		p, err := a.o.Keys.GetRotationPolicy(ctx, v, t.name)
		if err != nil {
			return response{}, err
		}
		return response{status: http.StatusOK, body: policyJSON(r, t.name, p)}, nil
	case opSetPolicy:
		var in policyBody
		if err := decode(r, &in); err != nil {
			return response{}, err
		}
		p, err := a.o.Keys.SetRotationPolicy(ctx, c, v, t.name, in.policy())
		if err != nil {
			return response{}, err
		}
		return response{status: http.StatusOK, body: policyJSON(r, t.name, p)}, nil
	case opRelease:
		return response{}, errkind.New(errkind.Invalid, "Key release is not supported: keys of this service are not exportable.").WithCode("BadParameter")
	case opRandom:
		return response{}, errRandomBytes
	}
	return response{}, errkind.New(errkind.Invalid, "unsupported operation").WithCode("BadParameter")
}

var errRandomBytes = errkind.New(errkind.Invalid, "GetRandomBytes is a Managed HSM operation; this vault does not offer it.").WithCode("BadParameter")

// maxResults is AKV's page size range.
const maxResults = 25

func (a *API) list(r *http.Request, req *request) (response, error) {
	ctx, v, t := r.Context(), req.vault.Name, req.t
	q := r.URL.Query()
	n := maxResults
	if s := q.Get("maxresults"); s != "" {
		m, err := strconv.Atoi(s)
		if err != nil || m < 1 || m > maxResults {
			return response{}, errkind.Errorf(errkind.Invalid, "maxresults must be a whole number from 1 to %d.", maxResults).WithCode("BadParameter")
		}
		n = m
	}
	after := q.Get("$skiptoken")
	var page vault.KeyPage
	var err error
	switch t.op {
	case opList:
		page, err = a.o.Keys.ListKeys(ctx, v, after, n)
	case opListDeleted:
		page, err = a.o.Keys.ListDeletedKeys(ctx, v, after, n)
	default:
		page, err = a.o.Keys.ListKeyVersions(ctx, v, t.name, after, n)
	}
	if err != nil {
		return response{}, err
	}
	items := make([]keyItem, 0, len(page.Items))
	for _, p := range page.Items {
		items = append(items, itemJSON(r, p))
	}
	var next *string
	if page.Next != "" {
		// An absolute link on the host the client used, with the
		// api-version: the Go client follows it as it is.
		nq := url.Values{"api-version": {q.Get("api-version")}, "$skiptoken": {page.Next}, "maxresults": {strconv.Itoa(n)}}
		link := baseURL(r) + r.URL.EscapedPath() + "?" + nq.Encode()
		next = &link
	}
	return response{status: http.StatusOK, body: map[string]any{"value": items, "nextLink": next}}, nil
}

type opParams struct {
	Alg    string `json:"alg"`
	Value  string `json:"value"`
	Digest string `json:"digest"`
}

func (a *API) crypto(r *http.Request, req *request) (response, error) {
	var in opParams
	if err := decode(r, &in); err != nil {
		return response{}, err
	}
	if in.Alg == "" {
		return response{}, errkind.New(errkind.Invalid, "The field alg is required.").WithCode("BadParameter")
	}
	value, err := bytesField("value", in.Value)
	if err != nil {
		return response{}, err
	}
	ctx, v, t := r.Context(), req.vault.Name, req.t
	result := func(res vault.OpResult, err error) (response, error) {
		if err != nil {
			return response{}, err
		}
		return response{status: http.StatusOK, body: map[string]string{"kid": kid(r, res.Ref), "value": b64.EncodeToString(res.Value)}}, nil
	}
	plain := func(res vault.PlainResult, err error) (response, error) {
		if err != nil {
			return response{}, err
		}
		// The plaintext lives only in the response body from here on.
		body := map[string]string{"kid": kid(r, res.Ref), "value": b64.EncodeToString(res.Value.Reveal())}
		res.Value.Wipe()
		return response{status: http.StatusOK, body: body}, nil
	}
	switch t.op {
	case opEncrypt:
		return result(a.o.Keys.Encrypt(ctx, v, t.name, t.version, in.Alg, value))
	case opWrap:
		return result(a.o.Keys.WrapKey(ctx, v, t.name, t.version, in.Alg, value))
	case opSign:
		return result(a.o.Keys.Sign(ctx, v, t.name, t.version, in.Alg, value))
	case opDecrypt:
		return plain(a.o.Keys.Decrypt(ctx, v, t.name, t.version, in.Alg, value))
	case opUnwrap:
		return plain(a.o.Keys.UnwrapKey(ctx, v, t.name, t.version, in.Alg, value))
	}
	digest, err := bytesField("digest", in.Digest)
	if err != nil {
		return response{}, err
	}
	res, err := a.o.Keys.Verify(ctx, v, t.name, t.version, in.Alg, digest, value)
	if err != nil {
		return response{}, err
	}
	return response{status: http.StatusOK, body: map[string]bool{"value": res.Valid}}, nil
}

type policyBody struct {
	ID              string `json:"id,omitempty"`
	LifetimeActions []struct {
		Trigger struct {
			TimeAfterCreate  string `json:"timeAfterCreate,omitempty"`
			TimeBeforeExpiry string `json:"timeBeforeExpiry,omitempty"`
		} `json:"trigger"`
		Action struct {
			Type string `json:"type"`
		} `json:"action"`
	} `json:"lifetimeActions"`
	Attributes struct {
		ExpiryTime string `json:"expiryTime,omitempty"`
		Created    int64  `json:"created,omitempty"`
		Updated    int64  `json:"updated,omitempty"`
	} `json:"attributes"`
}

func (b policyBody) policy() vault.RotationPolicy {
	p := vault.RotationPolicy{ExpiryTime: b.Attributes.ExpiryTime}
	for _, la := range b.LifetimeActions {
		p.LifetimeActions = append(p.LifetimeActions, vault.LifetimeAction{TimeAfterCreate: la.Trigger.TimeAfterCreate,
			TimeBeforeExpiry: la.Trigger.TimeBeforeExpiry, Type: la.Action.Type})
	}
	return p
}

func policyJSON(r *http.Request, name string, p vault.RotationPolicy) policyBody {
	var b policyBody
	b.ID = baseURL(r) + "/keys/" + url.PathEscape(name) + "/rotationpolicy"
	for _, la := range p.LifetimeActions {
		var x = struct {
			Trigger struct {
				TimeAfterCreate  string `json:"timeAfterCreate,omitempty"`
				TimeBeforeExpiry string `json:"timeBeforeExpiry,omitempty"`
			} `json:"trigger"`
			Action struct {
				Type string `json:"type"`
			} `json:"action"`
		}{}
		x.Trigger.TimeAfterCreate, x.Trigger.TimeBeforeExpiry, x.Action.Type = la.TimeAfterCreate, la.TimeBeforeExpiry, la.Type
		b.LifetimeActions = append(b.LifetimeActions, x)
	}
	b.Attributes.ExpiryTime = p.ExpiryTime
	if !p.Created.IsZero() {
		b.Attributes.Created, b.Attributes.Updated = p.Created.Unix(), p.Updated.Unix()
	}
	return b
}
