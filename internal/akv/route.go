package akv

import (
	"net/http"
	"strings"
)

// op is one operation of the keys API.
type op int

const (
	opUnknown op = iota
	opCreate
	opImport
	opGet
	opUpdate
	opDelete
	opList
	opListVersions
	opGetDeleted
	opListDeleted
	opRecover
	opPurge
	opBackup
	opRestore
	opEncrypt
	opDecrypt
	opSign
	opVerify
	opWrap
	opUnwrap
	opRelease
	opRotate
	opGetPolicy
	opSetPolicy
	opRandom
)

// opInfo is what authorizes and names an operation: its RBAC data action
// (under Microsoft.KeyVault/vaults/) and its access-policy permission.
type opInfo struct {
	name       string // for audit: keys/wrap etc.
	dataAction string
	permission string
	maxBody    int64
}

var ops = map[op]opInfo{
	opCreate:       {"keys/create", "keys/create/action", "create", 16 << 10},
	opImport:       {"keys/import", "keys/import/action", "import", 64 << 10},
	opGet:          {"keys/get", "keys/read", "get", 0},
	opUpdate:       {"keys/update", "keys/update/action", "update", 16 << 10},
	opDelete:       {"keys/delete", "keys/delete", "delete", 0},
	opList:         {"keys/list", "keys/read", "list", 0},
	opListVersions: {"keys/listVersions", "keys/read", "list", 0},
	opGetDeleted:   {"deletedkeys/get", "keys/read", "get", 0},
	opListDeleted:  {"deletedkeys/list", "keys/read", "list", 0},
	opRecover:      {"deletedkeys/recover", "keys/recover/action", "recover", 0},
	opPurge:        {"deletedkeys/purge", "keys/purge/action", "purge", 0},
	opBackup:       {"keys/backup", "keys/backup/action", "backup", 0},
	opRestore:      {"keys/restore", "keys/restore/action", "restore", 4 << 20},
	opEncrypt:      {"keys/encrypt", "keys/encrypt/action", "encrypt", 64 << 10},
	opDecrypt:      {"keys/decrypt", "keys/decrypt/action", "decrypt", 64 << 10},
	opSign:         {"keys/sign", "keys/sign/action", "sign", 16 << 10},
	opVerify:       {"keys/verify", "keys/verify/action", "verify", 16 << 10},
	opWrap:         {"keys/wrapKey", "keys/wrap/action", "wrapKey", 16 << 10},
	opUnwrap:       {"keys/unwrapKey", "keys/unwrap/action", "unwrapKey", 16 << 10},
	opRelease:      {"keys/release", "keys/release/action", "release", 64 << 10},
	opRotate:       {"keys/rotate", "keys/rotate/action", "rotate", 0},
	opGetPolicy:    {"keys/getRotationPolicy", "keyrotationpolicies/read", "getrotationpolicy", 0},
	opSetPolicy:    {"keys/setRotationPolicy", "keyrotationpolicies/write", "setrotationpolicy", 16 << 10},
	opRandom:       {"rng", "rng/action", "", 1 << 10},
}

// target is what a request names.
type target struct {
	op      op
	name    string // key name, escaped segments decoded
	version string
}

// cryptoVerbs are the POST actions that may follow /keys/{name}[/{version}].
var cryptoVerbs = map[string]op{
	"encrypt": opEncrypt, "decrypt": opDecrypt, "sign": opSign, "verify": opVerify,
	"wrapkey": opWrap, "unwrapkey": opUnwrap, "release": opRelease,
}

// route maps a method and the escaped path to an operation. It splits the
// escaped path, so "a%2Fb" is one segment (a name, refused later), never
// two; AKV paths are matched case-insensitively, as the service does.
func route(method, escapedPath string) (target, bool) {
	p := strings.Trim(escapedPath, "/")
	trailing := strings.HasSuffix(escapedPath, "/") && p != ""
	var seg []string
	for _, s := range strings.Split(p, "/") {
		if s != "" { // collapse "//", which some SDKs send
			seg = append(seg, s)
		}
	}
	for i, s := range seg {
		seg[i] = unescape(s)
	}
	lower := func(i int) string { return strings.ToLower(seg[i]) }
	switch {
	case len(seg) == 1 && lower(0) == "rng" && method == http.MethodPost:
		return target{op: opRandom}, true
	case len(seg) == 1 && lower(0) == "keys" && method == http.MethodGet:
		return target{op: opList}, true
	case len(seg) == 1 && lower(0) == "deletedkeys" && method == http.MethodGet:
		return target{op: opListDeleted}, true
	case len(seg) >= 2 && lower(0) == "deletedkeys":
		t := target{name: seg[1]}
		switch {
		case len(seg) == 2 && method == http.MethodGet:
			t.op = opGetDeleted
		case len(seg) == 2 && method == http.MethodDelete:
			t.op = opPurge
		case len(seg) == 3 && lower(2) == "recover" && method == http.MethodPost:
			t.op = opRecover
		default:
			return t, false
		}
		return t, true
	case len(seg) < 2 || lower(0) != "keys":
		return target{}, false
	}
	t := target{name: seg[1]}
	if len(seg) == 2 {
		switch {
		case lower(1) == "restore" && method == http.MethodPost && !trailing:
			t = target{op: opRestore}
		case method == http.MethodPut:
			t.op = opImport
		case method == http.MethodDelete:
			t.op = opDelete
		case method == http.MethodGet:
			t.op = opGet // GET /keys/{name}/ is the latest version
		case method == http.MethodPatch:
			t.op = opUpdate
		default:
			return t, false
		}
		return t, true
	}
	third := lower(2)
	if len(seg) == 3 {
		switch method {
		case http.MethodPost:
			switch third {
			case "create":
				t.op = opCreate
			case "rotate":
				t.op = opRotate
			case "backup":
				t.op = opBackup
			default:
				o, ok := cryptoVerbs[third]
				if !ok {
					return t, false
				}
				t.op = o
			}
		case http.MethodGet:
			switch third {
			case "versions":
				t.op = opListVersions
			case "rotationpolicy":
				t.op = opGetPolicy
			default:
				t.op, t.version = opGet, seg[2]
			}
		case http.MethodPut:
			if third != "rotationpolicy" {
				return t, false
			}
			t.op = opSetPolicy
		case http.MethodPatch:
			t.op, t.version = opUpdate, seg[2]
		default:
			return t, false
		}
		return t, true
	}
	if len(seg) == 4 && method == http.MethodPost {
		o, ok := cryptoVerbs[strings.ToLower(seg[3])]
		if !ok {
			return t, false
		}
		t.op, t.version = o, seg[2]
		return t, true
	}
	return t, false
}
