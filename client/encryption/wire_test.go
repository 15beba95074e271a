package encryption_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	domain "github.com/customerkey/customerkey/internal/workload/encryption"
)

// The encryption API's HTTP surface as any client sees it: the raw and
// JSON forms, the scope management routes and the error format.

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) errorCode() string {
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	_ = json.Unmarshal(a.body, &e)
	return e.Error.Code
}

func call(t *testing.T, ts *testServer, method, path, token, contentType string, body io.Reader, header map[string]string) answer {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+"/customerkey/v1/tenants/"+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := ts.Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func TestWireItems(t *testing.T) {
	ts := newServer(t)
	scope := ts.TenantID + "/encryption/scopes/crm-prod/"
	octet := "application/octet-stream"

	// Raw encrypt, JSON decrypt (with padding), raw decrypt.
	a := call(t, ts, "POST", scope+"encrypt", "app", octet, strings.NewReader("hello world"), map[string]string{"X-CK-AAD": b64([]byte("row 1"))})
	if a.status != 200 || a.header.Get("Content-Type") != octet || a.header.Get("Cache-Control") != "no-store" || !bytes.HasPrefix(a.body, []byte("CKE\x01")) {
		t.Fatalf("raw encrypt = %d %v %q", a.status, a.header, a.body)
	}
	ct := a.body
	in, _ := json.Marshal(map[string]string{"value": base64.URLEncoding.EncodeToString(ct), "aad": base64.URLEncoding.EncodeToString([]byte("row 1"))})
	a = call(t, ts, "POST", scope+"decrypt", "alice", "application/json; charset=utf-8", bytes.NewReader(in), nil)
	var out struct{ Value string }
	if a.status != 200 || json.Unmarshal(a.body, &out) != nil || out.Value != b64([]byte("hello world")) {
		t.Fatalf("JSON decrypt = %d %s", a.status, a.body)
	}
	a = call(t, ts, "POST", scope+"decrypt", "alice", octet, bytes.NewReader(ct), map[string]string{"X-CK-AAD": b64([]byte("row 1")) + "="})
	if a.status != 200 || string(a.body) != "hello world" {
		t.Fatalf("raw decrypt = %d %q", a.status, a.body)
	}
	// JSON encrypt answers JSON; a body of unknown length works too.
	in, _ = json.Marshal(map[string]string{"value": b64([]byte("json item"))})
	a = call(t, ts, "POST", scope+"encrypt", "app", "application/json", bytes.NewReader(in), nil)
	if a.status != 200 || json.Unmarshal(a.body, &out) != nil {
		t.Fatalf("JSON encrypt = %d %s", a.status, a.body)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 20000) // 320 kB, several buffer classes
	a = call(t, ts, "POST", scope+"encrypt", "app", octet, io.MultiReader(bytes.NewReader(big)), nil)
	if a.status != 200 {
		t.Fatalf("raw encrypt of unknown length = %d %s", a.status, a.body)
	}
	a = call(t, ts, "POST", scope+"decrypt", "app", octet, io.MultiReader(bytes.NewReader(a.body)), nil)
	if a.status != 200 || !bytes.Equal(a.body, big) {
		t.Fatalf("raw decrypt of unknown length = %d, %d bytes", a.status, len(a.body))
	}

	tests := []struct {
		name        string
		op, token   string
		contentType string
		body        []byte
		header      map[string]string
		status      int
		code        string
	}{
		{"wrong content type", "encrypt", "app", "text/plain", []byte("x"), nil, 400, "UnsupportedMediaType"},
		{"no content type", "encrypt", "app", "", []byte("x"), nil, 400, "UnsupportedMediaType"},
		{"aad not base64url", "encrypt", "app", octet, []byte("x"), map[string]string{"X-CK-AAD": "%%%"}, 400, "BadParameter"},
		{"value not base64url", "encrypt", "app", "application/json", []byte(`{"value":"***"}`), nil, 400, "BadParameter"},
		{"unknown JSON field", "encrypt", "app", "application/json", []byte(`{"value":"","extra":1}`), nil, 400, "BadRequest"},
		{"item too large", "encrypt", "app", octet, make([]byte, domain.MaxItemSize+1), nil, 413, "ItemTooLarge"},
		{"wrong aad", "decrypt", "app", octet, ct, map[string]string{"X-CK-AAD": b64([]byte("row 2"))}, 400, "DecryptionFailed"},
		{"not a ciphertext", "decrypt", "app", octet, []byte("plain text"), nil, 400, "MalformedCiphertext"},
		{"no token", "encrypt", "", octet, []byte("x"), nil, 401, "InvalidAuthenticationToken"},
		{"not a principal", "encrypt", "admin", octet, []byte("x"), nil, 403, "AuthorizationFailed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := call(t, ts, "POST", scope+tc.op, tc.token, tc.contentType, bytes.NewReader(tc.body), tc.header)
			if a.status != tc.status || a.errorCode() != tc.code {
				t.Errorf("%s = %d %s, want %d %s", tc.op, a.status, a.body, tc.status, tc.code)
			}
			if tc.status == 401 && !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer ") {
				t.Errorf("401 without a Bearer challenge: %v", a.header)
			}
		})
	}
}

func TestWireDataKeys(t *testing.T) {
	ts := newServer(t)
	scope := ts.TenantID + "/encryption/scopes/crm-prod/"
	a := call(t, ts, "POST", scope+"datakey", "app", "application/json", strings.NewReader("{}"), nil)
	var dk struct{ Key, WrappedKey string }
	if a.status != 200 || json.Unmarshal(a.body, &dk) != nil || a.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("datakey = %d %s", a.status, a.body)
	}
	key, err := base64.RawURLEncoding.DecodeString(dk.Key)
	if err != nil || len(key) != 32 {
		t.Fatalf("datakey key = %q", dk.Key)
	}
	a = call(t, ts, "POST", scope+"datakey/decrypt", "alice", "application/json", strings.NewReader(`{"wrappedKey":"`+dk.WrappedKey+`"}`), nil)
	var got struct{ Key string }
	if a.status != 200 || json.Unmarshal(a.body, &got) != nil || got.Key != dk.Key || bytes.Contains(a.body, []byte("wrappedKey")) {
		t.Fatalf("datakey/decrypt = %d %s, want the same key alone", a.status, a.body)
	}
	a = call(t, ts, "POST", scope+"datakey/decrypt", "alice", "application/json", strings.NewReader(`{"wrappedKey":"AAAA"}`), nil)
	if a.status != 400 || a.errorCode() != "MalformedCiphertext" {
		t.Errorf("datakey/decrypt of junk = %d %s", a.status, a.body)
	}
	a = call(t, ts, "POST", scope+"datakey", "admin", "application/json", strings.NewReader("{}"), nil)
	if a.status != 403 {
		t.Errorf("datakey by a non-principal = %d %s", a.status, a.body)
	}
}

func TestWireScopes(t *testing.T) {
	ts := newServer(t)
	base := ts.TenantID + "/encryption/scopes"
	create := func(token, body string) answer {
		return call(t, ts, "POST", base, token, "application/json", strings.NewReader(body), nil)
	}
	a := create("app", `{"name":"HR-Prod","principals":["`+ts.AliceID+`"]}`)
	var sc domain.Scope
	if a.status != 201 || json.Unmarshal(a.body, &sc) != nil || sc.Name != "hr-prod" || len(sc.Principals) != 1 ||
		a.header.Get("Location") != "/customerkey/v1/tenants/"+ts.TenantID+"/encryption/scopes/hr-prod" {
		t.Fatalf("create = %d %v %s", a.status, a.header, a.body)
	}
	for _, tc := range []struct {
		name, token, body string
		status            int
		code              string
	}{
		{"taken", "app", `{"name":"hr-prod"}`, 409, "ScopeExists"},
		{"bad name", "app", `{"name":"hr prod"}`, 400, "InvalidScopeName"},
		{"not an administrator", "alice", `{"name":"mine"}`, 403, "AuthorizationFailed"},
		{"another tenant", "other", `{"name":"theirs"}`, 403, "AuthorizationFailed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if a := create(tc.token, tc.body); a.status != tc.status || a.errorCode() != tc.code {
				t.Errorf("create = %d %s, want %d %s", a.status, a.body, tc.status, tc.code)
			}
		})
	}
	// The tenant's domain name works in the path as well as its id.
	a = call(t, ts, "GET", ts.Domain+"/encryption/scopes", "app", "", nil, nil)
	var list struct{ Value []domain.Scope }
	if a.status != 200 || json.Unmarshal(a.body, &list) != nil || len(list.Value) != 2 {
		t.Fatalf("list = %d %s, want crm-prod and hr-prod", a.status, a.body)
	}
	a = call(t, ts, "GET", base+"/hr-prod", "alice", "", nil, nil)
	if a.status != 200 {
		t.Errorf("get by a principal = %d %s", a.status, a.body)
	}
	a = call(t, ts, "PUT", base+"/hr-prod/principals", "app", "application/json", strings.NewReader(`{"principals":["`+ts.AppID+`"]}`), nil)
	if a.status != 200 || json.Unmarshal(a.body, &sc) != nil || len(sc.Principals) != 1 || sc.Principals[0] != ts.AppID {
		t.Errorf("set principals = %d %s", a.status, a.body)
	}
	if a = call(t, ts, "GET", base+"/hr-prod", "alice", "", nil, nil); a.status != 403 {
		t.Errorf("get by a removed principal = %d %s", a.status, a.body)
	}
	if a = call(t, ts, "DELETE", base+"/hr-prod", "alice", "", nil, nil); a.status != 403 {
		t.Errorf("delete by a non-administrator = %d %s", a.status, a.body)
	}
	if a = call(t, ts, "DELETE", base+"/hr-prod", "app", "", nil, nil); a.status != 204 {
		t.Errorf("delete = %d %s", a.status, a.body)
	}
	if a = call(t, ts, "GET", base+"/hr-prod", "app", "", nil, nil); a.status != 404 || a.errorCode() != "ScopeNotFound" {
		t.Errorf("get after delete = %d %s", a.status, a.body)
	}
	if a = call(t, ts, "GET", "nosuch.example/encryption/scopes", "app", "", nil, nil); a.status != 404 {
		t.Errorf("list of an unknown tenant = %d %s", a.status, a.body)
	}
}
