// Package cli holds the client-side commands of the customerkey binary:
// `customerkey <noun> <verb>`, human tables by default and `-o json`
// everywhere. It talks to a server over HTTPS only, with the endpoint and
// CA from CUSTOMERKEY_ENDPOINT and CUSTOMERKEY_CA_FILE and application
// credentials from AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET,
// as Azure tools do. It imports no server package.
package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// globals are the flags every client command takes.
type globals struct {
	output          string
	endpoint        string
	caFile          string
	credentialsFile string
}

// AddCommands adds the client commands to root.
func AddCommands(root *cobra.Command) {
	g := &globals{}
	pf := root.PersistentFlags()
	pf.StringVarP(&g.output, "output", "o", "table", "output format: table or json")
	pf.StringVar(&g.endpoint, "endpoint", "", "server URL (default $CUSTOMERKEY_ENDPOINT or the saved login)")
	pf.StringVar(&g.caFile, "ca-file", "", "CA certificate to trust (default $CUSTOMERKEY_CA_FILE or the saved login)")
	pf.StringVar(&g.credentialsFile, "credentials-file", "", "sign in with an operator.json-style credentials file")
	root.AddCommand(loginCmd(g), logoutCmd(), tenantCmd(g), spCmd(g), userCmd(g), directoryRoleCmd(g), auditCmd(g),
		subscriptionCmd(g), groupCmd(g), providerCmd(g), featureCmd(g), vaultCmd(g), roleCmd(g), keyCmd(g),
		onboardingCmd(g), benchCmd(g))
}

// printer renders either JSON or a table.
type printer struct {
	w      io.Writer
	format string
}

func (g *globals) printer(cmd *cobra.Command) (printer, error) {
	switch g.output {
	case "table", "json":
		return printer{w: cmd.OutOrStdout(), format: g.output}, nil
	}
	return printer{}, fmt.Errorf("--output %q: use table or json", g.output)
}

// begin resolves the session and the printer every command needs.
func (g *globals) begin(cmd *cobra.Command) (*session, printer, error) {
	pr, err := g.printer(cmd)
	if err != nil {
		return nil, printer{}, err
	}
	s, err := g.resolve()
	return s, pr, err
}

// print writes v as JSON, or as a table of headers and rows.
func (p printer) print(v any, headers []string, rows [][]string) error {
	if p.format == "json" {
		enc := json.NewEncoder(p.w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(headers, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// printFields writes one object as JSON, or as "Name : value" lines the
// way PowerShell's Format-List shows an object.
func (p printer) printFields(v any, fields [][2]string) error {
	if p.format == "json" {
		enc := json.NewEncoder(p.w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	width := 0
	for _, f := range fields {
		width = max(width, len(f[0]))
	}
	for _, f := range fields {
		fmt.Fprintf(p.w, "%-*s : %s\n", width, f[0], f[1])
	}
	return nil
}

// cmdlets maps the seed's PowerShell cmdlets to commands, and their
// parameters to flags, so that the setup guide can be followed as written.
var cmdlets = map[string]struct {
	args  []string
	flags map[string]string
}{
	"get-azadserviceprincipal":    {[]string{"sp", "show"}, map[string]string{"serviceprincipalname": "--app-id", "applicationid": "--app-id"}},
	"new-azadserviceprincipal":    {[]string{"sp", "create"}, map[string]string{"applicationid": "--app-id"}},
	"get-azproviderfeature":       {[]string{"feature", "show"}, map[string]string{"featurename": "--name", "providernamespace": "--namespace"}},
	"register-azproviderfeature":  {[]string{"feature", "register"}, map[string]string{"featurename": "--name", "providernamespace": "--namespace"}},
	"register-azresourceprovider": {[]string{"provider", "register"}, map[string]string{"providernamespace": "--namespace"}},
	"new-customerkeyonboardingrequest": {[]string{"onboarding", "new"}, map[string]string{"organization": "--organization", "scenario": "--scenario",
		"subscription1": "--subscription1", "vaultname1": "--vault-name1", "keyname1": "--key-name1", "keyidentifier1": "--key-identifier1",
		"subscription2": "--subscription2", "vaultname2": "--vault-name2", "keyname2": "--key-name2", "keyidentifier2": "--key-identifier2",
		"onboardingmode": "--onboarding-mode"}},
	"get-customerkeyonboardingrequest": {[]string{"onboarding", "get"}, map[string]string{"organizationid": "--organization-id", "requestid": "--request-id"}},
	"get-azkeyvault":                   {[]string{"vault", "show"}, map[string]string{"vaultname": "--name"}},
	"add-azkeyvaultkey": {[]string{"key", "create"}, map[string]string{"vaultname": "--vault-name", "name": "--name",
		"expires": "--expires", "notbefore": "--not-before", "keyops": "--ops", "size": "--size", "keytype": "--kty"}},
	"get-azkeyvaultkey":         {[]string{"key", "show"}, map[string]string{"vaultname": "--vault-name", "name": "--name", "version": "--version"}},
	"update-azkeyvaultkey":      {[]string{"key", "update"}, map[string]string{"vaultname": "--vault-name", "name": "--name", "expires": "--expires", "enable": "--enable"}},
	"backup-azkeyvaultkey":      {[]string{"key", "backup"}, map[string]string{"vaultname": "--vault-name", "name": "--name", "outputfile": "--file"}},
	"restore-azkeyvaultkey":     {[]string{"key", "restore"}, map[string]string{"vaultname": "--vault-name", "inputfile": "--file"}},
	"remove-azkeyvaultkey":      {[]string{"key", "delete"}, map[string]string{"vaultname": "--vault-name", "name": "--name"}},
	"undo-azkeyvaultkeyremoval": {[]string{"key", "recover"}, map[string]string{"vaultname": "--vault-name", "name": "--name"}},
}

// RewriteCmdlet turns `Get-AzADServicePrincipal -ServicePrincipalName X`
// into `sp show --app-id X`. Other arguments pass through unchanged.
func RewriteCmdlet(args []string) []string {
	if len(args) == 0 {
		return args
	}
	c, ok := cmdlets[strings.ToLower(args[0])]
	if !ok {
		return args
	}
	out := append([]string(nil), c.args...)
	for _, a := range args[1:] {
		if strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "--") {
			if f, ok := c.flags[strings.ToLower(a[1:])]; ok {
				out = append(out, f)
				continue
			}
		}
		out = append(out, a)
	}
	return out
}
