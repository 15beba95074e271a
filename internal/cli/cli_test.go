package cli

import (
	"slices"
	"testing"
)

func TestRewriteCmdlet(t *testing.T) {
	tests := []struct{ in, want []string }{
		{[]string{"Get-AzADServicePrincipal", "-ServicePrincipalName", "abc"}, []string{"sp", "show", "--app-id", "abc"}},
		{[]string{"get-azadserviceprincipal", "-servicePrincipalName", "abc", "-o", "json"}, []string{"sp", "show", "--app-id", "abc", "-o", "json"}},
		{[]string{"New-AzADServicePrincipal", "-ApplicationId", "abc"}, []string{"sp", "create", "--app-id", "abc"}},
		{[]string{"sp", "show", "--app-id", "abc"}, []string{"sp", "show", "--app-id", "abc"}},
		{[]string{"New-AzADServicePrincipal", "-Unknown", "x"}, []string{"sp", "create", "-Unknown", "x"}},
		{nil, nil},
	}
	for _, tc := range tests {
		if got := RewriteCmdlet(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("RewriteCmdlet(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
