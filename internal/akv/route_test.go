package akv

import "testing"

// routeCase is one request line and what route must make of it.
type routeCase struct {
	method, path string
	ok           bool
	op           op
	name         string
	version      string
}

// routeCases covers every row of the endpoint table (akv-api.md §a) in
// the forms the SDKs send, then the URL variants and what must not route.
var routeCases = []routeCase{
	// 1 CreateKey
	{"POST", "/keys/k1/create", true, opCreate, "k1", ""},
	// 2 ImportKey
	{"PUT", "/keys/k1", true, opImport, "k1", ""},
	// 3 GetKey: a version, or the latest with the SDKs' trailing slash
	{"GET", "/keys/k1/0123456789abcdef0123456789abcdef", true, opGet, "k1", "0123456789abcdef0123456789abcdef"},
	{"GET", "/keys/k1/", true, opGet, "k1", ""},
	{"GET", "/keys/k1", true, opGet, "k1", ""},
	// 4 UpdateKey
	{"PATCH", "/keys/k1/0123456789abcdef0123456789abcdef", true, opUpdate, "k1", "0123456789abcdef0123456789abcdef"},
	{"PATCH", "/keys/k1/", true, opUpdate, "k1", ""},
	// 5 DeleteKey
	{"DELETE", "/keys/k1", true, opDelete, "k1", ""},
	// 6 list keys
	{"GET", "/keys", true, opList, "", ""},
	{"GET", "/keys/", true, opList, "", ""},
	// 7 list versions
	{"GET", "/keys/k1/versions", true, opListVersions, "k1", ""},
	// 8 GetDeletedKey
	{"GET", "/deletedkeys/k1", true, opGetDeleted, "k1", ""},
	// 9 list deleted keys
	{"GET", "/deletedkeys", true, opListDeleted, "", ""},
	// 10 RecoverDeletedKey
	{"POST", "/deletedkeys/k1/recover", true, opRecover, "k1", ""},
	// 11 PurgeDeletedKey
	{"DELETE", "/deletedkeys/k1", true, opPurge, "k1", ""},
	// 12 BackupKey
	{"POST", "/keys/k1/backup", true, opBackup, "k1", ""},
	// 13 RestoreKey
	{"POST", "/keys/restore", true, opRestore, "", ""},
	// 14–20 crypto operations, with and without a version
	{"POST", "/keys/k1/v1/encrypt", true, opEncrypt, "k1", "v1"},
	{"POST", "/keys/k1/encrypt", true, opEncrypt, "k1", ""},
	{"POST", "/keys/k1/v1/decrypt", true, opDecrypt, "k1", "v1"},
	{"POST", "/keys/k1/decrypt", true, opDecrypt, "k1", ""},
	{"POST", "/keys/k1/v1/sign", true, opSign, "k1", "v1"},
	{"POST", "/keys/k1/sign", true, opSign, "k1", ""},
	{"POST", "/keys/k1/v1/verify", true, opVerify, "k1", "v1"},
	{"POST", "/keys/k1/verify", true, opVerify, "k1", ""},
	{"POST", "/keys/k1/v1/wrapkey", true, opWrap, "k1", "v1"},
	{"POST", "/keys/k1/wrapkey", true, opWrap, "k1", ""},
	{"POST", "/keys/k1/v1/unwrapkey", true, opUnwrap, "k1", "v1"},
	{"POST", "/keys/k1/unwrapkey", true, opUnwrap, "k1", ""},
	{"POST", "/keys/k1/v1/release", true, opRelease, "k1", "v1"},
	{"POST", "/keys/k1/release", true, opRelease, "k1", ""},
	// 21 RotateKey
	{"POST", "/keys/k1/rotate", true, opRotate, "k1", ""},
	// 22, 23 rotation policy
	{"GET", "/keys/k1/rotationpolicy", true, opGetPolicy, "k1", ""},
	{"PUT", "/keys/k1/rotationpolicy", true, opSetPolicy, "k1", ""},
	// 24 GetRandomBytes
	{"POST", "/rng", true, opRandom, "", ""},
	// 25 GetKeyAttestation (7.6+, Managed HSM): not served.
	{"GET", "/keys/k1/v1/attestation", false, opUnknown, "", ""},

	// Trailing slashes, as the SDKs send them for an empty version.
	{"POST", "/keys/k1/create/", true, opCreate, "k1", ""},
	{"POST", "/keys/k1/v1/sign/", true, opSign, "k1", "v1"},
	{"DELETE", "/keys/k1/", true, opDelete, "k1", ""},
	{"GET", "/deletedkeys/k1/", true, opGetDeleted, "k1", ""},
	{"POST", "/rng/", true, opRandom, "", ""},
	// "restore/" names a key called restore, which POST cannot address.
	{"POST", "/keys/restore/", false, opUnknown, "", ""},
	// A key may be called restore, versions or create: GET and PUT reach it.
	{"GET", "/keys/restore", true, opGet, "restore", ""},
	{"PUT", "/keys/versions", true, opImport, "versions", ""},
	{"POST", "/keys/create/create", true, opCreate, "create", ""},
	// Repeated slashes collapse (the .NET SDK sends them).
	{"GET", "//keys//k1/", true, opGet, "k1", ""},
	{"POST", "/keys//k1//v1//wrapkey", true, opWrap, "k1", "v1"},
	{"GET", "//keys", true, opList, "", ""},
	// An escaped slash stays inside its segment: never a route elsewhere.
	{"GET", "/keys/a%2Fb", true, opGet, "a/b", ""},
	{"GET", "/keys/a%2fb/", true, opGet, "a/b", ""},
	{"GET", "/keys/k1%2Fversions", true, opGet, "k1/versions", ""},
	{"GET", "/keys/k1/v1%2F..%2Fv2", true, opGet, "k1", "v1/../v2"},
	{"POST", "/keys/k1%2Fcreate", false, opUnknown, "", ""},
	{"POST", "/keys/k1/v1%2Fsign", false, opUnknown, "", ""},
	{"DELETE", "/keys/k1%2F..%2Fk2", true, opDelete, "k1/../k2", ""},
	{"POST", "/deletedkeys/k1%2Frecover", false, opUnknown, "", ""},
	{"GET", "/keys%2Fk1", false, opUnknown, "", ""},
	// Other escapes decode; a bad one is kept as sent.
	{"GET", "/keys/k%31", true, opGet, "k1", ""},
	{"GET", "/keys/%zz", true, opGet, "%zz", ""},
	// Path words compare without regard to case; names keep theirs.
	{"POST", "/KEYS/K1/WrapKey", true, opWrap, "K1", ""},
	{"POST", "/Keys/k1/V1/UnwrapKey", true, opUnwrap, "k1", "V1"},
	{"GET", "/Keys/k1/Versions", true, opListVersions, "k1", ""},
	{"GET", "/keys/k1/RotationPolicy", true, opGetPolicy, "k1", ""},
	{"PUT", "/keys/k1/ROTATIONPOLICY", true, opSetPolicy, "k1", ""},
	{"POST", "/DeletedKeys/k1/Recover", true, opRecover, "k1", ""},
	{"POST", "/Keys/Restore", true, opRestore, "", ""},
	{"POST", "/RNG", true, opRandom, "", ""},
	{"GET", "/DELETEDKEYS", true, opListDeleted, "", ""},

	// Unknown paths and methods.
	{"GET", "", false, opUnknown, "", ""},
	{"GET", "/", false, opUnknown, "", ""},
	{"GET", "/secrets/s1", false, opUnknown, "", ""},
	{"GET", "/certificates", false, opUnknown, "", ""},
	{"GET", "/rng", false, opUnknown, "", ""},
	{"POST", "/keys", false, opUnknown, "", ""},
	{"DELETE", "/keys", false, opUnknown, "", ""},
	{"PUT", "/deletedkeys", false, opUnknown, "", ""},
	{"POST", "/deletedkeys/k1", false, opUnknown, "", ""},
	{"GET", "/deletedkeys/k1/recover", false, opUnknown, "", ""},
	{"PATCH", "/deletedkeys/k1", false, opUnknown, "", ""},
	{"POST", "/keys/k1", false, opUnknown, "", ""},
	{"HEAD", "/keys/k1", false, opUnknown, "", ""},
	{"OPTIONS", "/keys/k1/", false, opUnknown, "", ""},
	{"POST", "/keys/k1/frobnicate", false, opUnknown, "", ""},
	{"POST", "/keys/k1/v1/frobnicate", false, opUnknown, "", ""},
	{"POST", "/keys/k1/v1/create", false, opUnknown, "", ""},
	{"GET", "/keys/k1/v1/encrypt", false, opUnknown, "", ""},
	{"PUT", "/keys/k1/v1", false, opUnknown, "", ""},
	{"DELETE", "/keys/k1/v1", false, opUnknown, "", ""},
	{"PUT", "/keys/k1/rotate", false, opUnknown, "", ""},
	{"GET", "/keys/k1/v1/sign/extra", false, opUnknown, "", ""},
	{"post", "/keys/k1/create", false, opUnknown, "", ""}, // methods are case-sensitive (RFC 9110)
}

func TestRoute(t *testing.T) {
	for _, tc := range routeCases {
		got, ok := route(tc.method, tc.path)
		if ok != tc.ok {
			t.Errorf("route(%s %q) ok = %v, want %v (got %+v)", tc.method, tc.path, ok, tc.ok, got)
			continue
		}
		if !ok {
			continue
		}
		if got.op != tc.op || got.name != tc.name || got.version != tc.version {
			t.Errorf("route(%s %q) = op %d name %q version %q, want op %d name %q version %q",
				tc.method, tc.path, got.op, got.name, got.version, tc.op, tc.name, tc.version)
		}
		if _, known := ops[got.op]; !known {
			t.Errorf("route(%s %q) = op %d, which has no entry in ops", tc.method, tc.path, got.op)
		}
	}
}

// TestRouteCoversEveryOperation checks that the table above reaches every
// operation the API authorizes.
func TestRouteCoversEveryOperation(t *testing.T) {
	seen := map[op]bool{}
	for _, tc := range routeCases {
		if tc.ok {
			seen[tc.op] = true
		}
	}
	for o, info := range ops {
		if !seen[o] {
			t.Errorf("no route case reaches %s", info.name)
		}
	}
}
