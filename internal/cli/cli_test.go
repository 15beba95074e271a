package cli

import (
	"slices"
	"strings"
	"testing"
)

func TestRewriteCmdlet(t *testing.T) {
	const k1, k2 = "https://a.vault.localhost:8443/keys/k1", "https://b.vault.localhost:8443/keys/k2"
	tests := []struct {
		name     string
		in, want string // space-separated; ~ stands for a space inside one argument
	}{
		{"service principal", "Get-AzADServicePrincipal -ServicePrincipalName abc", "sp show --app-id abc"},
		{"case-insensitive, -o passes", "get-azadserviceprincipal -servicePrincipalName abc -o json", "sp show --app-id abc -o json"},
		{"new service principal", "New-AzADServicePrincipal -ApplicationId abc", "sp create --app-id abc"},
		{"a command passes", "sp show --app-id abc", "sp show --app-id abc"},
		{"unknown parameter passes", "New-AzADServicePrincipal -Unknown x", "sp create -Unknown x"},
		{"$true becomes true", "Update-AzKeyVaultKey -VaultName v -Name k -Enable $true", "key update --vault-name v --name k --enable true"},
		{"Add-AzKeyVaultKey -Destination HSM", "Add-AzKeyVaultKey -VaultName v -Name k -Destination HSM", "key create --vault-name v --name k --hsm"},
		{"-Destination is case-insensitive, with -KeyType and -Size", "Add-AzKeyVaultKey -VaultName v -Name k -KeyType RSA -Size 3072 -destination hsm",
			"key create --vault-name v --name k --kty RSA --size 3072 --hsm"},
		{"-Destination:HSM", "Add-AzKeyVaultKey -VaultName v -Name k -Destination:Hsm", "key create --vault-name v --name k --hsm"},
		{"-Destination Software", "Add-AzKeyVaultKey -VaultName v -Name k -Destination Software", "key create --vault-name v --name k --hsm=false"},
		{"-Destination of another value passes", "Add-AzKeyVaultKey -VaultName v -Name k -Destination Cloud -o json",
			"key create --vault-name v --name k -Destination Cloud -o json"},
		{"-Destination:other passes", "Add-AzKeyVaultKey -VaultName v -Name k -Destination:Cloud", "key create --vault-name v --name k -Destination:Cloud"},
		{"-Destination without a value passes", "Add-AzKeyVaultKey -VaultName v -Name k -Destination", "key create --vault-name v --name k -Destination"},

		{"New-M365 with a comma list", "New-M365DataAtRestEncryptionPolicy -Name p1 -AzureKeyIDs " + k1 + "," + k2 + " -Description Contoso~MDEP",
			"m365-policy create --name p1 --azure-key-ids " + k1 + "," + k2 + " --description Contoso~MDEP"},
		{"New-M365 with PowerShell's spaced list", "New-M365DataAtRestEncryptionPolicy -Name p1 -AzureKeyIDs " + k1 + ", " + k2,
			"m365-policy create --name p1 --azure-key-ids " + k1 + "," + k2},
		{"New-M365 -Enabled $false", "New-M365DataAtRestEncryptionPolicy -Name p1 -AzureKeyIDs k1,k2 -Enabled $false",
			"m365-policy create --name p1 --azure-key-ids k1,k2 --enabled=false"},
		{"Set-M365 -Enabled:$false", "Set-M365DataAtRestEncryptionPolicy -Identity p1 -Enabled:$false", "m365-policy set --identity p1 --enabled=false"},
		{"Set-M365 -Enabled $True", "Set-M365DataAtRestEncryptionPolicy -Identity p1 -Enabled $True", "m365-policy set --identity p1 --enabled=true"},
		{"Set-M365 -Enabled without value", "Set-M365DataAtRestEncryptionPolicy -Identity p1 -Enabled", "m365-policy set --identity p1 --enabled"},
		{"Set-M365 rename, -Force dropped", "Set-M365DataAtRestEncryptionPolicy -Identity p1 -Name p2 -Description d -Force",
			"m365-policy set --identity p1 --name p2 --description d"},
		{"Set-M365 -Refresh", "Set-M365DataAtRestEncryptionPolicy -Identity p1 -Refresh", "m365-policy refresh --identity p1"},
		{"Set-M365 -Refresh first", "Set-M365DataAtRestEncryptionPolicy -Refresh -Identity p1", "m365-policy refresh --identity p1"},
		{"Set-M365 -Replace", "Set-M365DataAtRestEncryptionPolicy -Identity p1 -Replace -AzureKeyIDs k3,k4",
			"m365-policy replace --identity p1 --azure-key-ids k3,k4"},
		{"Get-M365 all", "Get-M365DataAtRestEncryptionPolicy", "m365-policy list"},
		{"Get-M365 one", "Get-M365DataAtRestEncryptionPolicy -Identity p1", "m365-policy show --identity p1"},
		{"Test-M365", "Test-M365DataAtRestEncryptionPolicy -Identity p1", "m365-policy test --identity p1"},
		{"Set-M365 assignment", "Set-M365DataAtRestEncryptionPolicyAssignment -DataEncryptionPolicy p1 -Force",
			"m365-policy assignment set --data-encryption-policy p1"},
		{"Get-M365 assignment", "Get-M365DataAtRestEncryptionPolicyAssignment", "m365-policy assignment show"},

		{"New-DataEncryptionPolicy", "New-DataEncryptionPolicy -Name e1 -AzureKeyIDs k1,k2 -Description d",
			"exchange-policy create --name e1 --azure-key-ids k1,k2 --description d"},
		{"Set-DEP -Enabled $false", "Set-DataEncryptionPolicy -Identity e1 -Enabled $false", "exchange-policy set --identity e1 --enabled=false"},
		{"Set-DEP -Enabled $false -Force", "Set-DataEncryptionPolicy -Identity e1 -Enabled $false -Force", "exchange-policy set --identity e1 --enabled=false"},
		{"Set-DEP -Refresh", "Set-DataEncryptionPolicy -Identity e1 -Refresh", "exchange-policy refresh --identity e1"},
		{"Set-DEP -Replace", "Set-DataEncryptionPolicy -Identity e1 -AzureKeyIDs k3,k4 -Replace",
			"exchange-policy replace --identity e1 --azure-key-ids k3,k4"},
		{"Set-DEP purge request", "Set-DataEncryptionPolicy -Identity e1 -PermanentDataPurgeRequested -PermanentDataPurgeReason Leaving~Microsoft~365 -PermanentDataPurgeContact admin@contoso.com",
			"exchange-policy request-purge --identity e1 --reason Leaving~Microsoft~365 --contact admin@contoso.com"},
		{"Set-DEP purge request -Force", "Set-DataEncryptionPolicy -Identity e1 -PermanentDataPurgeRequested -PermanentDataPurgeReason r -PermanentDataPurgeContact c -Force",
			"exchange-policy request-purge --identity e1 --reason r --contact c --force"},
		{"Set-DEP purge request -Force:$false", "Set-DataEncryptionPolicy -Identity e1 -PermanentDataPurgeRequested -PermanentDataPurgeReason r -Force:$false",
			"exchange-policy request-purge --identity e1 --reason r --force=false"},
		{"Get-DEP all", "Get-DataEncryptionPolicy", "exchange-policy list"},
		{"Get-DEP one", "Get-DataEncryptionPolicy -Identity e1 -o json", "exchange-policy show --identity e1 -o json"},
		{"Get-DEP $null is not all", "Get-DataEncryptionPolicy -Identity $null", "exchange-policy show --identity $null"},

		{"Set-Mailbox policy", "Set-Mailbox -Identity alice@contoso.com -DataEncryptionPolicy e1",
			"mailbox set --identity alice@contoso.com --data-encryption-policy e1"},
		{"Set-Mailbox $null", "Set-Mailbox -Identity alice@contoso.com -DataEncryptionPolicy $null",
			"mailbox set --identity alice@contoso.com --clear-data-encryption-policy"},
		{"Set-Mailbox -Param:$null", "Set-Mailbox -Identity alice@contoso.com -DataEncryptionPolicy:$NULL",
			"mailbox set --identity alice@contoso.com --clear-data-encryption-policy"},
		{"Set-MailUser", "Set-MailUser -Identity bob@contoso.com -DataEncryptionPolicy e1", "mailbox set --identity bob@contoso.com --data-encryption-policy e1"},
		{"Get-Mailbox all", "Get-Mailbox", "mailbox list"},
		{"Get-Mailbox one", "Get-Mailbox -Identity alice@contoso.com", "mailbox show --identity alice@contoso.com"},
		{"Get-MailboxStatistics", "Get-MailboxStatistics -Identity alice@contoso.com", "mailbox statistics --identity alice@contoso.com"},

		{"Register-SPO by name", "Register-SPODataEncryptionPolicy -PrimaryKeyVaultName va -PrimaryKeyName ka -PrimaryKeyVersion 01 -SecondaryKeyVaultName vb -SecondaryKeyName kb -SecondaryKeyVersion 02",
			"spo-policy register --primary-key-vault-name va --primary-key-name ka --primary-key-version 01 --secondary-key-vault-name vb --secondary-key-name kb --secondary-key-version 02"},
		{"Register-SPO by URI, --geo passes", "Register-SPODataEncryptionPolicy -PrimaryKeyVaultUri " + k1 + " -SecondaryKeyVaultUri " + k2 + " --geo EUR --wait",
			"spo-policy register --primary-key-uri " + k1 + " --secondary-key-uri " + k2 + " --geo EUR --wait"},
		{"Update-SPO by name", "Update-SPODataEncryptionPolicy -KeyVaultName va -KeyName ka -KeyVersion 03 -KeyType Primary",
			"spo-policy update --key-vault-name va --key-name ka --key-version 03 --key-type Primary"},
		{"Update-SPO by URI", "Update-SPODataEncryptionPolicy -KeyVaultUri " + k2 + " -KeyType Secondary",
			"spo-policy update --key-uri " + k2 + " --key-type Secondary"},
		{"Get-SPO", "Get-SPODataEncryptionPolicy", "spo-policy show"},
		{"Restore-SPO", "Restore-SPODataEncryptionPolicy -PrimaryKeyVaultUri " + k1 + " -SecondaryKeyVaultUri " + k2 + " --tenant contoso.onmicrosoft.com",
			"spo-policy restore --primary-key-uri " + k1 + " --secondary-key-uri " + k2 + " --tenant contoso.onmicrosoft.com"},
		{"Get-SPOSite", "Get-SPOSiteDataEncryptionPolicy -Identity https://contoso.sharepoint.com/sites/finance",
			"site encryption --site https://contoso.sharepoint.com/sites/finance"},
	}
	split := func(s string) []string {
		f := strings.Fields(s)
		for i := range f {
			f[i] = strings.ReplaceAll(f[i], "~", " ")
		}
		return f
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in, want := split(tc.in), split(tc.want)
			if got := RewriteCmdlet(in); !slices.Equal(got, want) {
				t.Errorf("RewriteCmdlet(%q)\n got %q\nwant %q", in, got, want)
			}
		})
	}
	if got := RewriteCmdlet(nil); got != nil {
		t.Errorf("RewriteCmdlet(nil) = %q, want nil", got)
	}
}
