package vault_test

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"strings"
	"testing"
	"time"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/jwk"
	"github.com/customerkey/customerkey/internal/secret"
	"github.com/customerkey/customerkey/internal/vault"
)

func TestCreateKeyTypes(t *testing.T) {
	e := newKeyEnv(t)
	rsaOps := []string{"encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"}
	cases := []struct {
		name  string
		spec  vault.KeySpec
		bits  int    // RSA
		crv   string // EC
		coord int
	}{
		{"rsa-default", vault.KeySpec{Type: "RSA"}, 2048, "", 0},
		{"rsa-3072", vault.KeySpec{Type: "RSA", Size: 3072, PublicExponent: 65537}, 3072, "", 0},
		{"rsa-4096", vault.KeySpec{Type: "rsa", Size: 4096}, 4096, "", 0}, // the only 4096-bit generation
		{"ec-default", vault.KeySpec{Type: "EC"}, 0, "P-256", 32},
		{"ec-p384", vault.KeySpec{Type: "EC", Curve: "P-384"}, 0, "P-384", 48},
		{"ec-p521", vault.KeySpec{Type: "EC", Curve: "p-521"}, 0, "P-521", 66},
		{"ec-p256k", vault.KeySpec{Type: "EC", Curve: "P-256K"}, 0, "P-256K", 32},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := tc.spec
			spec.Tags = map[string]string{"purpose": tc.name}
			k := e.createKey(t, tc.name, spec)
			if k.Ref.Vault != kv || k.Ref.Name != tc.name || !versionRE.MatchString(k.Ref.Version) {
				t.Errorf("Ref = %+v; want %s/%s/<32 hex>", k.Ref, kv, tc.name)
			}
			a := k.Attributes
			if !a.Enabled || a.NotBefore != nil || a.Expires != nil || !a.Created.Equal(day0(e)) || !a.Updated.Equal(a.Created) {
				t.Errorf("Attributes = %+v; want enabled, no nbf/exp, created == updated == %v", a, day0(e))
			}
			if a.RecoveryLevel != "Recoverable+Purgeable" || a.RecoverableDays != 90 || k.Managed {
				t.Errorf("recovery = %s/%d managed %v; want Recoverable+Purgeable/90, not managed", a.RecoveryLevel, a.RecoverableDays, k.Managed)
			}
			if k.Tags["purpose"] != tc.name {
				t.Errorf("Tags = %v", k.Tags)
			}
			if k.JWK.HasPrivate() || k.JWK.KID != "" {
				t.Errorf("JWK has private parts or a kid: %+v", k.JWK)
			}
			pub, err := k.JWK.Public()
			if err != nil {
				t.Fatalf("JWK.Public() err = %v", err)
			}
			if tc.bits != 0 {
				rk, ok := pub.(*rsa.PublicKey)
				if !ok || rk.N.BitLen() != tc.bits || rk.E != 65537 || k.Type != "RSA" || k.JWK.Kty != "RSA" {
					t.Errorf("public key = %T (%d bits); want RSA %d bits, e 65537", pub, bitLen(pub), tc.bits)
				}
				if !sameStrings(k.JWK.KeyOps, rsaOps) {
					t.Errorf("key_ops = %v, want %v", k.JWK.KeyOps, rsaOps)
				}
				return
			}
			if k.JWK.Kty != "EC" || k.JWK.Crv != tc.crv || len(k.JWK.X) != tc.coord || len(k.JWK.Y) != tc.coord {
				t.Errorf("JWK = kty %s crv %s x %d y %d bytes; want EC %s, %d-byte coordinates",
					k.JWK.Kty, k.JWK.Crv, len(k.JWK.X), len(k.JWK.Y), tc.crv, tc.coord)
			}
			if !sameStrings(k.JWK.KeyOps, []string{"sign", "verify"}) {
				t.Errorf("key_ops = %v, want [sign verify]", k.JWK.KeyOps)
			}
			got, err := e.svc.GetKey(ctx, kv, tc.name, "")
			if err != nil || got.Ref != k.Ref || string(got.JWK.X) != string(k.JWK.X) {
				t.Errorf("GetKey = %+v, %v; want the created version", got.Ref, err)
			}
		})
	}
}

func bitLen(pub any) int {
	if k, ok := pub.(*rsa.PublicKey); ok {
		return k.N.BitLen()
	}
	return 0
}

func TestCreateKeyRefusals(t *testing.T) {
	e := newKeyEnv(t)
	std := spec("kv-standard")
	std.SKU.Name = "standard"
	e.create(t, std)
	exp := day0(e).Add(time.Hour)
	cases := []struct {
		name, vault, key string
		spec             vault.KeySpec
		kind             errkind.Kind
		code             string
		msg              []string // substrings of the message
	}{
		{"underscore", kv, "a_b", vault.KeySpec{Type: "RSA"}, errkind.Invalid, "BadParameter", []string{"a_b"}},
		{"slash", kv, "a/b", vault.KeySpec{Type: "RSA"}, errkind.Invalid, "BadParameter", nil},
		{"128 chars", kv, strings.Repeat("k", 128), vault.KeySpec{Type: "RSA"}, errkind.Invalid, "BadParameter", nil},
		{"empty name", kv, "", vault.KeySpec{Type: "RSA"}, errkind.Invalid, "BadParameter", nil},
		{"rsa 1024", kv, "k", vault.KeySpec{Type: "RSA", Size: 1024}, errkind.Invalid, "BadParameter", []string{"2048, 3072, 4096"}},
		{"rsa 2049", kv, "k", vault.KeySpec{Type: "RSA", Size: 2049}, errkind.Invalid, "BadParameter", []string{"2048, 3072, 4096"}},
		{"exponent 3", kv, "k", vault.KeySpec{Type: "RSA", PublicExponent: 3}, errkind.Invalid, "BadParameter", nil},
		{"rsa-hsm on standard", "kv-standard", "k", vault.KeySpec{Type: "RSA-HSM"}, errkind.Invalid, "BadParameter", []string{"premium vault"}},
		{"ec-hsm on standard", "kv-standard", "k", vault.KeySpec{Type: "EC-HSM"}, errkind.Invalid, "BadParameter", []string{"premium vault"}},
		{"rsa-hsm on premium", kv, "k", vault.KeySpec{Type: "RSA-HSM"}, errkind.FailedPrecondition, "HSMNotConfigured", []string{"HSM backend", "not configured"}},
		{"oct", kv, "k", vault.KeySpec{Type: "oct"}, errkind.Invalid, "BadParameter", []string{"Managed HSM"}},
		{"unknown kty", kv, "k", vault.KeySpec{Type: "DSA"}, errkind.Invalid, "BadParameter", nil},
		{"no kty", kv, "k", vault.KeySpec{}, errkind.Invalid, "BadParameter", nil},
		{"bad curve", kv, "k", vault.KeySpec{Type: "EC", Curve: "P-224"}, errkind.Invalid, "BadParameter", []string{"P-256K"}},
		{"ec with size", kv, "k", vault.KeySpec{Type: "EC", Size: 256}, errkind.Invalid, "BadParameter", nil},
		{"ec wrapKey", kv, "k", vault.KeySpec{Type: "EC", Ops: []string{"sign", "wrapKey"}}, errkind.Invalid, "BadParameter", []string{"cannot encrypt"}},
		{"ec encrypt", kv, "k", vault.KeySpec{Type: "EC", Ops: []string{"encrypt"}}, errkind.Invalid, "BadParameter", nil},
		{"unknown op", kv, "k", vault.KeySpec{Type: "RSA", Ops: []string{"fly"}}, errkind.Invalid, "BadParameter", nil},
		{"exportable", kv, "k", vault.KeySpec{Type: "RSA", Exportable: true}, errkind.Invalid, "BadParameter", []string{"release"}},
		{"16 tags", kv, "k", vault.KeySpec{Type: "RSA", Tags: manyTags(16)}, errkind.Invalid, "BadParameter", []string{"15"}},
		{"exp before nbf", kv, "k", vault.KeySpec{Type: "RSA", NotBefore: &exp, Expires: ptrTime(exp.Add(-time.Second))}, errkind.Invalid, "BadParameter", nil},
		{"exp after 9999", kv, "k", vault.KeySpec{Type: "RSA", Expires: ptrTime(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))}, errkind.Invalid, "BadParameter", nil},
		{"no vault", "nope-vault", "k", vault.KeySpec{Type: "RSA"}, errkind.NotFound, "VaultNotFound", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.CreateKey(ctx, caller, tc.vault, tc.key, tc.spec)
			wantErr(t, "CreateKey", err, tc.kind, tc.code)
			if m := errkind.Public(err); !hasAll(m, tc.msg...) {
				t.Errorf("message %q; want it to mention %q", m, tc.msg)
			}
		})
	}
	if page, _ := e.svc.ListKeys(ctx, kv, "", 0); len(page.Items) != 0 {
		t.Errorf("ListKeys after refusals = %d keys, want 0", len(page.Items))
	}
	if n := len(e.events(t, "keys/create")); n != 0 {
		t.Errorf("%d keys/create events after refusals, want 0", n)
	}
}

func manyTags(n int) map[string]string {
	m := map[string]string{}
	for i := range n {
		m[strings.Repeat("t", i+1)] = "v"
	}
	return m
}

func TestKeyVersionsAndLatest(t *testing.T) {
	e := newKeyEnv(t)
	v1 := e.createKey(t, "Multi", vault.KeySpec{Type: "EC", Tags: map[string]string{"gen": "1"}})
	e.clock.Advance(time.Minute)
	v2 := e.createKey(t, "multi", vault.KeySpec{Type: "EC", Curve: "P-384", Tags: map[string]string{"gen": "2"}})
	if v1.Ref.Version == v2.Ref.Version || v2.Ref.Name != "Multi" {
		t.Fatalf("second create = %+v; want a new version of Multi (names keep their first spelling)", v2.Ref)
	}
	latest, err := e.svc.GetKey(ctx, kv, "MULTI", "")
	if err != nil || latest.Ref != v2.Ref || latest.JWK.Crv != "P-384" {
		t.Errorf("GetKey(latest) = %+v %s, %v; want %+v on P-384", latest.Ref, latest.JWK.Crv, err, v2.Ref)
	}
	old, err := e.svc.GetKey(ctx, kv, "multi", strings.ToUpper(v1.Ref.Version))
	if err != nil || old.Ref != v1.Ref || string(old.JWK.X) != string(v1.JWK.X) || old.Tags["gen"] != "1" {
		t.Errorf("GetKey(v1) = %+v, %v; want the first version's material and tags", old.Ref, err)
	}
	page, err := e.svc.ListKeyVersions(ctx, kv, "multi", "", 0)
	if err != nil || len(page.Items) != 2 || page.Next != "" {
		t.Fatalf("ListKeyVersions = %+v, %v; want 2 versions on one page", page, err)
	}
	got := []string{page.Items[0].Ref.Version, page.Items[1].Ref.Version}
	if !sameStrings(got, []string{v1.Ref.Version, v2.Ref.Version}) {
		t.Errorf("versions = %v, want %s and %s", got, v1.Ref.Version, v2.Ref.Version)
	}
	one, err := e.svc.ListKeyVersions(ctx, kv, "multi", "", 1)
	if err != nil || len(one.Items) != 1 || one.Next == "" {
		t.Fatalf("ListKeyVersions(max 1) = %+v, %v; want a next cursor", one, err)
	}
	two, err := e.svc.ListKeyVersions(ctx, kv, "multi", one.Next, 1)
	if err != nil || len(two.Items) != 1 || two.Next != "" || two.Items[0].Ref.Version == one.Items[0].Ref.Version {
		t.Errorf("second page = %+v, %v; want the other version and no cursor", two, err)
	}

	for _, n := range []string{"k-a", "k-b", "k-c"} {
		e.createKey(t, n, vault.KeySpec{Type: "EC", Tags: map[string]string{"name": n}})
	}
	var names []string
	after := ""
	for range 10 {
		p, err := e.svc.ListKeys(ctx, kv, after, 2)
		if err != nil {
			t.Fatalf("ListKeys(%q) err = %v", after, err)
		}
		for _, it := range p.Items {
			names = append(names, it.Ref.Name)
			if it.Ref.Version != "" {
				t.Errorf("ListKeys item %s has version %s; want none", it.Ref.Name, it.Ref.Version)
			}
			if it.Ref.Name == "Multi" && it.Tags["gen"] != "2" {
				t.Errorf("ListKeys item Multi tags %v; want the latest version's", it.Tags)
			}
		}
		if after = p.Next; after == "" {
			break
		}
	}
	if strings.Join(names, ",") != "k-a,k-b,k-c,Multi" {
		t.Errorf("ListKeys pages = %v; want k-a,k-b,k-c,Multi", names)
	}
	if _, err := e.svc.ListKeys(ctx, kv, "bad/cursor", 0); !errkind.Is(err, errkind.Invalid) {
		t.Errorf("ListKeys(bad cursor) err = %v, want Invalid", err)
	}

	for _, c := range []struct{ name, version string }{
		{"nope", ""}, {"multi", "0123456789abcdef0123456789abcdef"}, {"multi", "short"}, {"a_b", ""},
	} {
		_, err := e.svc.GetKey(ctx, kv, c.name, c.version)
		wantErr(t, "GetKey("+c.name+", "+c.version+")", err, errkind.NotFound, "KeyNotFound")
	}
	if _, err := e.svc.ListKeyVersions(ctx, kv, "nope", "", 0); !errkind.Is(err, errkind.NotFound) {
		t.Errorf("ListKeyVersions(nope) err = %v, want NotFound", err)
	}
}

func TestUpdateKey(t *testing.T) {
	e := newKeyEnv(t)
	v1 := e.createKey(t, "upd", vault.KeySpec{Type: "EC"})
	v2 := e.createKey(t, "upd", vault.KeySpec{Type: "EC", Tags: map[string]string{"a": "1"}})
	created := v2.Attributes.Created
	e.clock.Advance(time.Hour)

	exp := day0(e).Add(30 * 24 * time.Hour)
	k, err := e.svc.UpdateKey(ctx, caller, kv, "upd", "", vault.KeyUpdate{
		Enabled: ptr(false), Expires: &exp, Tags: map[string]string{"b": "2"}})
	if err != nil {
		t.Fatalf("UpdateKey(latest) err = %v", err)
	}
	a := k.Attributes
	if k.Ref != v2.Ref || a.Enabled || a.Expires == nil || !a.Expires.Equal(exp) || k.Tags["b"] != "2" || k.Tags["a"] != "" {
		t.Errorf("UpdateKey = %+v %+v tags %v; want v2 disabled, exp %v, tags {b:2}", k.Ref, a, k.Tags, exp)
	}
	if !a.Created.Equal(created) || !a.Updated.Equal(day0(e)) {
		t.Errorf("created %v updated %v; want created kept (%v) and updated now (%v)", a.Created, a.Updated, created, day0(e))
	}
	if old, _ := e.svc.GetKey(ctx, kv, "upd", v1.Ref.Version); !old.Attributes.Enabled || old.Attributes.Expires != nil {
		t.Errorf("v1 = %+v; an update of the latest must not touch older versions", old.Attributes)
	}

	// exp can be changed, never removed; omitting it keeps it.
	_, err = e.svc.UpdateKey(ctx, caller, kv, "upd", "", vault.KeyUpdate{Expires: &time.Time{}})
	wantErr(t, "UpdateKey(clear exp)", err, errkind.Invalid, "BadParameter")
	if m := errkind.Public(err); !strings.Contains(m, "can't be removed") {
		t.Errorf("clear exp message %q; want it to say an expiration date can't be removed", m)
	}
	k, err = e.svc.UpdateKey(ctx, caller, kv, "upd", "", vault.KeyUpdate{Tags: map[string]string{}})
	if err != nil || k.Attributes.Expires == nil || !k.Attributes.Expires.Equal(exp) || len(k.Tags) != 0 {
		t.Errorf("UpdateKey(no exp, clear tags) = %+v tags %v, %v; want exp kept and no tags", k.Attributes, k.Tags, err)
	}
	forever := time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
	k, err = e.svc.UpdateKey(ctx, caller, kv, "upd", "", vault.KeyUpdate{Expires: &forever, Enabled: ptr(true)})
	if err != nil || !k.Attributes.Expires.Equal(forever) || !k.Attributes.Enabled {
		t.Errorf("UpdateKey(exp 9999-12-31) = %+v, %v; want accepted", k.Attributes, err)
	}
	got, _ := e.svc.GetKey(ctx, kv, "upd", "")
	if got.Attributes.Expires == nil || got.Attributes.Expires.Unix() != 253402214400 {
		t.Errorf("GetKey exp = %v; want 9999-12-31T00:00:00Z (unix 253402214400)", got.Attributes.Expires)
	}

	// An older version by id; ops are checked against the type.
	k, err = e.svc.UpdateKey(ctx, caller, kv, "upd", v1.Ref.Version, vault.KeyUpdate{Ops: []string{"verify"}})
	if err != nil || k.Ref != v1.Ref || !sameStrings(k.JWK.KeyOps, []string{"verify"}) {
		t.Errorf("UpdateKey(v1 ops) = %+v %v, %v; want v1 with [verify]", k.Ref, k.JWK.KeyOps, err)
	}
	for _, c := range []struct {
		name, key, version string
		u                  vault.KeyUpdate
		kind               errkind.Kind
	}{
		{"ec wrap", "upd", "", vault.KeyUpdate{Ops: []string{"wrapKey"}}, errkind.Invalid},
		{"nbf after exp", "upd", "", vault.KeyUpdate{NotBefore: ptrTime(forever.Add(time.Hour))}, errkind.Invalid},
		{"16 tags", "upd", "", vault.KeyUpdate{Tags: manyTags(16)}, errkind.Invalid},
		{"missing key", "nope", "", vault.KeyUpdate{Enabled: ptr(true)}, errkind.NotFound},
		{"missing version", "upd", "0123456789abcdef0123456789abcdef", vault.KeyUpdate{Enabled: ptr(true)}, errkind.NotFound},
	} {
		_, err := e.svc.UpdateKey(ctx, caller, kv, c.key, c.version, c.u)
		wantErr(t, "UpdateKey("+c.name+")", err, c.kind, "")
	}
	if n := len(e.events(t, "keys/update")); n != 4 {
		t.Errorf("%d keys/update events, want 4", n)
	}
}

func TestImportKey(t *testing.T) {
	e := newKeyEnv(t)
	priv := fixtureRSA()
	k, err := e.svc.ImportKey(ctx, caller, kv, "byok", vault.KeyImport{Key: rsaJWK(priv, "wrapKey", "unwrapKey"),
		Tags: map[string]string{"origin": "hsm-ceremony"}})
	if err != nil {
		t.Fatalf("ImportKey(RSA) err = %v", err)
	}
	pub, err := k.JWK.Public()
	if err != nil || !priv.PublicKey.Equal(pub) || k.JWK.HasPrivate() {
		t.Errorf("imported JWK = %T, %v (private %v); want the fixture's public key only", pub, err, k.JWK.HasPrivate())
	}
	if !sameStrings(k.JWK.KeyOps, []string{"wrapKey", "unwrapKey"}) || k.Tags["origin"] != "hsm-ceremony" {
		t.Errorf("imported ops %v tags %v; want the caller's ops and tags", k.JWK.KeyOps, k.Tags)
	}
	ec, err := e.svc.ImportKey(ctx, caller, kv, "byok-ec", vault.KeyImport{Key: ecJWK(fixtureEC())})
	if err != nil || !sameStrings(ec.JWK.KeyOps, []string{"sign", "verify"}) || ec.JWK.Crv != "P-256" {
		t.Errorf("ImportKey(EC) = %+v, %v; want P-256 with the default ops", ec.JWK, err)
	}
	if p, _ := ec.JWK.Public(); !fixtureEC().PublicKey.Equal(p.(*ecdsa.PublicKey)) {
		t.Errorf("imported EC public key differs from the fixture's")
	}

	public := rsaJWK(priv).Strip()
	cases := []struct {
		name string
		in   vault.KeyImport
		kind errkind.Kind
		code string
	}{
		{"public only", vault.KeyImport{Key: public}, errkind.Invalid, "BadParameter"},
		{"hsm flag", vault.KeyImport{Key: rsaJWK(priv), HSM: true}, errkind.FailedPrecondition, "HSMNotConfigured"},
		{"ec wrap ops", vault.KeyImport{Key: ecJWK(fixtureEC(), "wrapKey")}, errkind.Invalid, "BadParameter"},
		{"oct", vault.KeyImport{Key: jwk.Key{Kty: "oct"}}, errkind.Invalid, "BadParameter"},
		{"exportable", vault.KeyImport{Key: rsaJWK(priv), Exportable: true}, errkind.Invalid, "BadParameter"},
	}
	inconsistent := rsaJWK(priv)
	d := priv.D.Bytes()
	d[len(d)-1] ^= 2
	inconsistent.D = secret.Copy(d)
	cases = append(cases, struct {
		name string
		in   vault.KeyImport
		kind errkind.Kind
		code string
	}{"inconsistent", vault.KeyImport{Key: inconsistent}, errkind.Invalid, "BadParameter"})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.ImportKey(ctx, caller, kv, "refused", tc.in)
			wantErr(t, "ImportKey", err, tc.kind, tc.code)
		})
	}
	hsmKey := rsaJWK(priv)
	hsmKey.Kty = "RSA-HSM"
	_, err = e.svc.ImportKey(ctx, caller, kv, "refused", vault.KeyImport{Key: hsmKey})
	wantErr(t, "ImportKey(RSA-HSM)", err, errkind.FailedPrecondition, "HSMNotConfigured")
	if n := len(e.events(t, "keys/import")); n != 2 {
		t.Errorf("%d keys/import events, want 2", n)
	}
}
