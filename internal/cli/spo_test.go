package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestKeyURI(t *testing.T) {
	tests := []struct{ base, name, version, want string }{
		{"https://contosoakv.vault.localhost:8443", "ka", "0a1b2c", "https://contosoakv.vault.localhost:8443/keys/ka/0a1b2c"},
		{"https://contosoakv.vault.azure.net/", "ka", "", "https://contosoakv.vault.azure.net/keys/ka"},
		{"https://v.vault.localhost", "a key", "v/1", "https://v.vault.localhost/keys/a%20key/v%2F1"},
	}
	for _, tc := range tests {
		if got := keyURI(tc.base, tc.name, tc.version); got != tc.want {
			t.Errorf("keyURI(%q, %q, %q) = %q, want %q", tc.base, tc.name, tc.version, got, tc.want)
		}
	}
}

// TestKeyRefResolve builds URIs from vault names with the server's vault
// DNS suffix and port, and refuses a key given by neither or both sets.
func TestKeyRefResolve(t *testing.T) {
	f := startFakeAPI(t)
	s, err := (&globals{}).resolve()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		k       keyRef
		want    string
		wantErr string
	}{
		{"by name, vault lower-cased", keyRef{vault: "ContosoSPOAKV01", name: "ka", version: "01"}, "https://contosospoakv01.vault.localhost:" + f.port + "/keys/ka/01", ""},
		{"by name, versionless", keyRef{vault: "v", name: "ka"}, "https://v.vault.localhost:" + f.port + "/keys/ka", ""},
		{"by URI as given", keyRef{uri: "https://hsm.managedhsm.azure.net/keys/k/1"}, "https://hsm.managedhsm.azure.net/keys/k/1", ""},
		{"both", keyRef{uri: "u", version: "1"}, "", "not both"},
		{"no name", keyRef{vault: "v"}, "", "give --primary-key-vault-name and --primary-key-name"},
		{"nothing", keyRef{}, "", "or --primary-key-uri"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.k.resolve(t.Context(), s, "primary-")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("resolve(%+v) = %q, %v; want an error saying %q", tc.k, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("resolve(%+v) = %q, %v; want %q", tc.k, got, err, tc.want)
			}
		})
	}
}

func spoAnswer(state string, pct float64) json.RawMessage {
	b, _ := json.Marshal(map[string]any{"geo": "NAM", "state": state, "percentComplete": pct})
	return b
}

// TestWaitRegistered follows a geo's policy in fake time.
func TestWaitRegistered(t *testing.T) {
	tests := []struct {
		name         string
		first        json.RawMessage
		next         []json.RawMessage // answers of the polls; past the end, the last repeats
		getErr       error
		timeout      time.Duration
		wantState    string
		wantErr      string
		wantProgress string
	}{
		{"registering to registered", spoAnswer("Registering", 0),
			[]json.RawMessage{spoAnswer("Registering", 50), spoAnswer("Registering", 50), spoAnswer("Registered", 100)}, nil, time.Minute,
			"Registered", "", lines("Registering: 0% of sites", "Registering: 50% of sites", "Registered: 100% of sites")},
		{"already registered", spoAnswer("Registered", 100), nil, nil, time.Minute, "Registered", "", lines("Registered: 100% of sites")},
		{"a roll", spoAnswer("Rolling", 12.5), []json.RawMessage{spoAnswer("Registered", 100)}, nil, time.Minute,
			"Registered", "", lines("Rolling: 12.5% of sites", "Registered: 100% of sites")},
		{"another state", spoAnswer("Registering", 10), []json.RawMessage{spoAnswer("RecoveryMode", 10)}, nil, time.Minute,
			"RecoveryMode", "is RecoveryMode, not Registered", lines("Registering: 10% of sites", "RecoveryMode: 10% of sites")},
		{"no state", json.RawMessage(`{"geo":"NAM"}`), nil, nil, time.Minute, "", "has no state", ""},
		{"timeout", spoAnswer("Registering", 5), []json.RawMessage{spoAnswer("Registering", 5)}, nil, 10 * time.Second,
			"Registering", "still Registering (5%) after 10s", lines("Registering: 5% of sites")},
		{"the server fails", spoAnswer("Rolling", 5), nil, errors.New("reaching the server: connection refused"), time.Minute,
			"Rolling", "connection refused", lines("Rolling: 5% of sites")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				polls := 0
				get := func(context.Context) (json.RawMessage, error) {
					if tc.getErr != nil {
						return nil, tc.getErr
					}
					a := tc.next[min(polls, len(tc.next)-1)]
					polls++
					return a, nil
				}
				var progress bytes.Buffer
				start := time.Now()
				raw, err := waitRegistered(t.Context(), tc.first, get, &progress, "NAM", tc.timeout)
				if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
					t.Errorf("err = %v, want %q", err, tc.wantErr)
				}
				var st spoState
				_ = json.Unmarshal(raw, &st)
				if st.State != tc.wantState {
					t.Errorf("last answer's state = %q, want %q", st.State, tc.wantState)
				}
				if progress.String() != tc.wantProgress {
					t.Errorf("progress\n%s\nwant\n%s", progress.String(), tc.wantProgress)
				}
				if elapsed := time.Since(start); elapsed > tc.timeout {
					t.Errorf("waited %s, more than the timeout %s", elapsed, tc.timeout)
				}
				if want := time.Duration(polls) * spoPollSeconds * time.Second; tc.getErr == nil && time.Since(start) < want {
					t.Errorf("%d polls in %s, want one every %ds", polls, time.Since(start), spoPollSeconds)
				}
			})
		})
	}
}

// TestRegisterWait drives register --wait against the fake server: the
// progress goes to stderr, the final policy to stdout.
func TestRegisterWait(t *testing.T) {
	f := startFakeAPI(t)
	const geoPath = "/customerkey/v1/tenants/t1/sharepoint/policies/NAM"
	ok := func(raw json.RawMessage) answer {
		return answer{status: http.StatusOK, contentType: "application/json", body: string(raw)}
	}
	f.answer("PUT", geoPath, ok(spoAnswer("Registering", 0)))
	f.answer("GET", geoPath, ok(spoAnswer("Registered", 100)))
	out, stderr, err := runCmd(t, "", "Register-SPODataEncryptionPolicy", "-PrimaryKeyVaultUri", "https://a.vault.localhost/keys/ka/1",
		"-SecondaryKeyVaultUri", "https://b.vault.localhost/keys/kb/1", "--wait")
	if err != nil {
		t.Fatal(err)
	}
	if stderr != lines("Registering: 0% of sites", "Registered: 100% of sites") {
		t.Errorf("stderr = %q, want the progress", stderr)
	}
	if !strings.Contains(out, "State           : Registered") {
		t.Errorf("stdout = %q, want the registered policy", out)
	}
	if reqs := f.requests(); len(reqs) != 2 || reqs[1].method != "GET" || reqs[1].path != geoPath {
		t.Errorf("requests %+v, want the PUT and one GET of the geo", reqs)
	}
}
