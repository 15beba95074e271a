package cli

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

const samplePolicy = `{"id":"3f2a","name":"Contoso EXO","description":"Mailboxes","kind":"Exchange","enabled":false,` +
	`"azureKeyIds":["https://a.vault.localhost/keys/k1","https://b.vault.localhost/keys/k2"],` +
	`"rootKeys":["https://a.vault.localhost/keys/k1/v1","https://b.vault.localhost/keys/k2/v2"],"keyVersion":2,"state":"Disabled",` +
	`"createdTime":"2026-01-02T03:04:05Z","modifiedTime":"2026-01-03T03:04:05Z",` +
	`"permanentDataPurgeRequested":true,"permanentDataPurgeReason":"Leaving","permanentDataPurgeContact":"admin@contoso.com","purgeApprovals":["op1"]}`

// lines joins the expected lines of a human view.
func lines(l ...string) string { return strings.Join(l, "\n") + "\n" }

// TestHumanOutput checks the views in the cmdlets' field names: one
// policy, a list, mailbox statistics, a geo rolling with its percentage,
// and an object whose fields the command does not name.
func TestHumanOutput(t *testing.T) {
	tests := []struct {
		name  string
		print func(printer) error
		want  string
	}{
		{"one mailbox policy", func(pr printer) error { return printOne(pr, json.RawMessage(samplePolicy), exchangeFamily.columns()) }, lines(
			"Name                        : Contoso EXO",
			"Id                          : 3f2a",
			"Description                 : Mailboxes",
			"Enabled                     : False",
			"AzureKeyIDs                 : https://a.vault.localhost/keys/k1, https://b.vault.localhost/keys/k2",
			"State                       : Disabled",
			"KeyVersion                  : 2",
			"RootKeys                    : https://a.vault.localhost/keys/k1/v1, https://b.vault.localhost/keys/k2/v2",
			"WhenCreated                 : 2026-01-02T03:04:05Z",
			"WhenChanged                 : 2026-01-03T03:04:05Z",
			"PermanentDataPurgeRequested : True",
			"PermanentDataPurgeReason    : Leaving",
			"PermanentDataPurgeContact   : admin@contoso.com",
			"PurgeApprovals              : op1",
			"Kind                        : Exchange")},
		{"a list of policies", func(pr printer) error {
			return printMany(pr, json.RawMessage(`[`+samplePolicy+`,{"id":"9c","name":"Contoso MDEP","enabled":true,"state":"Active","keyVersion":1,"azureKeyIds":["k3","k4"]}]`), policyListColumns)
		}, lines(
			"Name          Id    Enabled  State     KeyVersion  AzureKeyIDs",
			"Contoso EXO   3f2a  False    Disabled  2           https://a.vault.localhost/keys/k1, https://b.vault.localhost/keys/k2",
			"Contoso MDEP  9c    True     Active    1           k3, k4")},
		{"an empty list", func(pr printer) error { return printMany(pr, json.RawMessage(`[]`), policyListColumns) }, lines(
			"Name  Id  Enabled  State  KeyVersion  AzureKeyIDs")},
		{"mailbox statistics", func(pr printer) error {
			return printOne(pr, json.RawMessage(`{"mailboxGuid":"m1","displayName":"Alice","itemCount":12,"totalItemSize":4608,`+
				`"dataEncryptionPolicyId":"3f2a","isEncrypted":true}`), statisticsColumns)
		}, lines(
			"DisplayName            : Alice",
			"DataEncryptionPolicyID : 3f2a",
			"IsEncrypted            : True",
			"ItemCount              : 12",
			"TotalItemSize          : 4608",
			"MailboxGuid            : m1")},
		{"a geo rolling", func(pr printer) error {
			return printOne(pr, json.RawMessage(`{"geo":"NAM","primaryKeyId":"https://a.vault.localhost/keys/ka/01","secondaryKeyId":"https://b.vault.localhost/keys/kb/02","state":"Rolling","percentComplete":42.5}`), spoColumns)
		}, lines(
			"Geo             : NAM",
			"State           : Rolling",
			"PercentComplete : 42.5",
			"PrimaryKeyId    : https://a.vault.localhost/keys/ka/01",
			"SecondaryKeyId  : https://b.vault.localhost/keys/kb/02")},
		{"fields the command does not name, in the server's order", func(pr printer) error {
			return printOne(pr, json.RawMessage(`{"name":"hr","principals":["a","b"],"policy":{"id":"9c"},"closed":null}`), nil)
		}, lines(
			"Name       : hr",
			"Principals : a, b",
			"Policy     : {\"id\":\"9c\"}",
			"Closed     : ")},
		{"no policy assigned", func(pr printer) error { return printAssignment(pr, json.RawMessage(`{"dataEncryptionPolicy":null}`)) }, lines(
			"DataEncryptionPolicy : (none: the tenant's workloads use service-managed keys)")},
		{"the assigned policy", func(pr printer) error {
			return printAssignment(pr, json.RawMessage(`{"dataEncryptionPolicy":{"name":"Contoso MDEP","id":"9c","enabled":true,"azureKeyIds":["k3","k4"],"state":"Active","keyVersion":1}}`))
		}, lines(
			"DataEncryptionPolicy : Contoso MDEP",
			"Id                   : 9c",
			"Description          : ",
			"Enabled              : True",
			"AzureKeyIDs          : k3, k4",
			"State                : Active",
			"KeyVersion           : 1",
			"RootKeys             : ",
			"WhenCreated          : ",
			"WhenChanged          : ")},
		{"an empty answer prints nothing", func(pr printer) error { return printOne(pr, nil, policyColumns) }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := tc.print(printer{w: &b, format: "table"}); err != nil {
				t.Fatal(err)
			}
			if b.String() != tc.want {
				t.Errorf("printed\n%s\nwant\n%s", b.String(), tc.want)
			}
		})
	}
}

// TestJSONOutputIsTheAPIs checks that -o json prints the server's JSON
// with every field it sent, whatever the human view names.
func TestJSONOutputIsTheAPIs(t *testing.T) {
	f := startFakeAPI(t)
	withExtra := strings.TrimSuffix(samplePolicy, "}") + `,"futureField":{"x":[1,2]}}`
	f.answer("GET", "/customerkey/v1/tenants/t1/exchange-policies/e1", answer{status: http.StatusOK, contentType: "application/json", body: withExtra})
	f.answer("GET", "/customerkey/v1/tenants/t1/exchange-policies", answer{status: http.StatusOK, contentType: "application/json",
		body: `{"value":[` + withExtra + `]}`})
	out, _, err := runCmd(t, "", "Get-DataEncryptionPolicy", "-Identity", "e1", "-o", "json")
	if err != nil || !jsonEqual([]byte(out), []byte(withExtra)) {
		t.Errorf("show -o json printed %s (%v), want the server's object", out, err)
	}
	out, _, err = runCmd(t, "", "Get-DataEncryptionPolicy", "-o", "json")
	if err != nil || !jsonEqual([]byte(out), []byte(`[`+withExtra+`]`)) {
		t.Errorf("list -o json printed %s (%v), want the server's array", out, err)
	}
}

func TestPolicyTestFailsOnAFailingKey(t *testing.T) {
	const path = "/customerkey/v1/tenants/t1/m365-policies/p1/test"
	tests := []struct {
		name, answer, wantErr string
		wantOut               []string
	}{
		{"both keys pass", `{"results":[{"keyId":"k1","result":"Success"},{"keyId":"k2","result":"Success"}]}`, "",
			[]string{"KeyId  Result   Failure  Message", "k1     Success"}},
		{"one key revoked", `{"results":[{"keyId":"k1","result":"Success"},` +
			`{"keyId":"k2","result":"Failed","failure":"AccessDenied","message":"the workload has no role on the vault"}]}`,
			"1 of the policy's 2 root keys failed the test", []string{"k2     Failed   AccessDenied  the workload has no role on the vault"}},
		{"not a test answer", `{"results":{}}`, "not {\"results\":[…]}", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := startFakeAPI(t)
			f.answer("POST", path, answer{status: http.StatusOK, contentType: "application/json", body: tc.answer})
			out, _, err := runCmd(t, "", "Test-M365DataAtRestEncryptionPolicy", "-Identity", "p1")
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("err = %v, want %q", err, tc.wantErr)
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("printed\n%s\nwant a line with %q", out, w)
				}
			}
		})
	}
}

func TestKeyIDs(t *testing.T) {
	tests := []struct {
		in      []string
		want    []string
		wantErr bool
	}{
		{[]string{"k1", " k2"}, []string{"k1", "k2"}, false},
		{[]string{"k1"}, []string{"k1"}, false},
		{[]string{"k1", ""}, nil, true},
		{[]string{"  "}, nil, true},
	}
	for _, tc := range tests {
		got, err := keyIDs(tc.in)
		if (err != nil) != tc.wantErr || strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("keyIDs(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}
