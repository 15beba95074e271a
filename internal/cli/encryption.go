package cli

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"

	"github.com/spf13/cobra"
)

// aadHeader carries the additional data of an encrypt or decrypt,
// base64url.
var aadHeader = http.CanonicalHeaderKey("X-CK-AAD")

// scopeColumns are the fields of a scope; its policy, shown after them,
// names the policy key version its key is wrapped under.
var scopeColumns = []column{{"Name", "name"}, {"Principals", "principals"}, {"KeyVersion", "keyVersion"},
	{"WhenCreated", "createdDateTime"}, {"WhenChanged", "lastModifiedDateTime"}}

// encryptionCmd is the general encryption API: scopes, each with its own
// key under the tenant's multi-workload policy, and the principals that
// may encrypt and decrypt with it.
func encryptionCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "encryption", Short: "Encrypt and decrypt data under the tenant's multi-workload policy, by scope"}
	tenant := addTenantFlag(cmd)
	scopes := func(s *session, segments ...string) string {
		return tenantPath(s, *tenant, append([]string{"encryption", "scopes"}, segments...)...)
	}

	scope := &cobra.Command{Use: "scope", Short: "Encryption scopes and the principals allowed to use them"}
	var name string
	var principals []string
	create := &cobra.Command{
		Use:   "create --name NAME [--principal OBJECT_ID]...",
		Short: "Create a scope",
		Args:  cobra.NoArgs,
		RunE: g.runE(func(cmd *cobra.Command, s *session, pr printer) error {
			in := map[string]any{"name": name, "principals": principals}
			raw, err := s.callRaw(cmd.Context(), http.MethodPost, scopes(s), in)
			if err != nil {
				return err
			}
			return printOne(pr, raw, scopeColumns)
		}),
	}
	create.Flags().StringVar(&name, "name", "", "a unique name (required)")
	create.Flags().StringArrayVar(&principals, "principal", nil, "the object id of a user or service principal allowed to encrypt and decrypt (repeatable)")
	_ = create.MarkFlagRequired("name")

	list := &cobra.Command{
		Use:   "list",
		Short: "List scopes",
		Args:  cobra.NoArgs,
		RunE: g.runE(func(cmd *cobra.Command, s *session, pr printer) error {
			raw, err := s.callList(cmd.Context(), scopes(s))
			if err != nil {
				return err
			}
			return printMany(pr, raw, scopeColumns)
		}),
	}

	var showScope string
	show := &cobra.Command{
		Use:   "show --scope NAME",
		Short: "Show a scope",
		Args:  cobra.NoArgs,
		RunE: g.runE(func(cmd *cobra.Command, s *session, pr printer) error {
			raw, err := s.callRaw(cmd.Context(), http.MethodGet, scopes(s, showScope), nil)
			if err != nil {
				return err
			}
			return printOne(pr, raw, scopeColumns)
		}),
	}
	scopeFlag(show, &showScope)

	var delScope string
	del := &cobra.Command{
		Use:   "delete --scope NAME",
		Short: "Delete a scope and its key: what was encrypted with it can no longer be decrypted",
		Args:  cobra.NoArgs,
		RunE: g.runE(func(cmd *cobra.Command, s *session, _ printer) error {
			if _, err := s.callRaw(cmd.Context(), http.MethodDelete, scopes(s, delScope), nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Deleted scope %s.\n", delScope)
			return nil
		}),
	}
	scopeFlag(del, &delScope)

	var setScope string
	var setPrincipals []string
	setPrincipalsCmd := &cobra.Command{
		Use:   "set-principals --scope NAME [--principal ID]...",
		Short: "Replace the principals allowed to use a scope (none: nobody)",
		Args:  cobra.NoArgs,
		RunE: g.runE(func(cmd *cobra.Command, s *session, pr printer) error {
			// An empty list, not null: the scope is closed to everyone.
			in := map[string]any{"principals": append([]string{}, setPrincipals...)}
			raw, err := s.callRaw(cmd.Context(), http.MethodPut, scopes(s, setScope, "principals"), in)
			if err != nil {
				return err
			}
			return printOne(pr, raw, scopeColumns)
		}),
	}
	scopeFlag(setPrincipalsCmd, &setScope)
	setPrincipalsCmd.Flags().StringArrayVar(&setPrincipals, "principal", nil, "the object id of a user or service principal (repeatable)")
	scope.AddCommand(create, list, show, setPrincipalsCmd, del)

	crypt := func(op string) *cobra.Command {
		var sc, in, out, aad string
		c := &cobra.Command{
			Use:   op + " --scope NAME [--in FILE|-] [--out FILE|-] [--aad TEXT]",
			Short: strings.ToUpper(op[:1]) + op[1:] + " bytes with a scope's key (standard input to standard output by default)",
			Args:  cobra.NoArgs,
			RunE: g.runE(func(cmd *cobra.Command, s *session, _ printer) error {
				body, size, err := openInput(cmd, in)
				if err != nil {
					return err
				}
				defer body.Close()
				var hdr http.Header
				if cmd.Flags().Changed("aad") {
					hdr = http.Header{aadHeader: {base64.RawURLEncoding.EncodeToString([]byte(aad))}}
				}
				resp, err := s.transfer(cmd.Context(), http.MethodPost, scopes(s, sc, op), hdr, body, size)
				if err != nil {
					return err
				}
				defer resp.Body.Close()
				return writeOutput(cmd, out, resp.Body)
			}),
		}
		scopeFlag(c, &sc)
		c.Flags().StringVar(&in, "in", "-", "the input file; - is standard input")
		c.Flags().StringVar(&out, "out", "-", "the output file; - is standard output")
		c.Flags().StringVar(&aad, "aad", "", "additional data bound to the ciphertext: decrypting needs the same")
		return c
	}
	cmd.AddCommand(scope, crypt("encrypt"), crypt("decrypt"))
	return cmd
}

func scopeFlag(c *cobra.Command, v *string) {
	c.Flags().StringVar(v, "scope", "", "the scope's name or id (required)")
	_ = c.MarkFlagRequired("scope")
}
