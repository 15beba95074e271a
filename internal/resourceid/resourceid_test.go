package resourceid

import (
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in, str, typ string
		chain        int
		ok           bool
	}{
		{"/subscriptions/s1", "/subscriptions/s1", "", 1, true},
		{"/SUBSCRIPTIONS/s1/resourcegroups/rg", "/subscriptions/s1/resourceGroups/rg", "", 2, true},
		{"/subscriptions/s1/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v1", "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v1", "Microsoft.KeyVault/vaults", 3, true},
		{"/subscriptions/s1/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v1/keys/k1", "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v1/keys/k1", "Microsoft.KeyVault/vaults/keys", 4, true},
		{"", "", "", 0, false},
		{"/", "", "", 0, false},
		{"/subscriptions/", "", "", 0, false},
		{"/subscriptions/s1/", "", "", 0, false},
		{"/subscriptions/s1/providers/Microsoft.KeyVault/vaults/v1", "", "", 0, false},
		{"/subscriptions/s1/resourceGroups/rg/providers/Microsoft.KeyVault/vaults", "", "", 0, false},
		{"/subscriptions/s1/resourceGroups/rg/providers//vaults/v", "", "", 0, false},
		{"/tenants/x", "", "", 0, false},
	}
	for _, tc := range tests {
		id, err := Parse(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("Parse(%q) err = %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if !tc.ok {
			continue
		}
		if id.String() != tc.str || id.Type() != tc.typ || len(id.Chain()) != tc.chain {
			t.Errorf("Parse(%q) = %q type %q chain %d; want %q %q %d", tc.in, id.String(), id.Type(), len(id.Chain()), tc.str, tc.typ, tc.chain)
		}
	}
}

func TestWithin(t *testing.T) {
	v := Vault("S1", "RG", "kv1")
	k := v.Child("keys", "k1")
	for _, tc := range []struct {
		id, scope ID
		want      bool
	}{
		{k, Subscription("s1"), true},
		{k, ResourceGroup("s1", "rg"), true},
		{k, v, true},
		{k, k, true},
		{v, k, false},
		{Vault("s1", "rg", "kv10"), v, false},
		{k, Subscription("s2"), false},
	} {
		if got := tc.id.Within(tc.scope); got != tc.want {
			t.Errorf("%s.Within(%s) = %v, want %v", tc.id, tc.scope, got, tc.want)
		}
	}
}
