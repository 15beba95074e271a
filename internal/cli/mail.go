package cli

import (
	"fmt"
	"io"
	"net/http"

	"github.com/spf13/cobra"
)

// mailboxColumns are the fields Get-Mailbox shows, under its names.
var mailboxColumns = []column{
	{"DisplayName", "displayName"}, {"PrimarySmtpAddress", "primarySmtpAddress"}, {"RecipientTypeDetails", "recipientTypeDetails"},
	{"Owner", "owner"}, {"DataEncryptionPolicy", "dataEncryptionPolicy"}, {"Id", "id"},
}

var mailboxListColumns = []column{
	{"DisplayName", "displayName"}, {"PrimarySmtpAddress", "primarySmtpAddress"}, {"RecipientTypeDetails", "recipientTypeDetails"},
	{"DataEncryptionPolicy", "dataEncryptionPolicy"},
}

// statisticsColumns are the fields of Get-MailboxStatistics the seed reads
// (| fl DataEncryptionPolicyID, IsEncrypted).
var statisticsColumns = []column{
	{"DisplayName", "displayName"}, {"DataEncryptionPolicyID", "dataEncryptionPolicyId"}, {"IsEncrypted", "isEncrypted"},
	{"ItemCount", "itemCount"}, {"TotalItemSize", "totalItemSize"},
}

var messageColumns = []column{{"Id", "id"}, {"Subject", "subject"}, {"From", "from"}, {"To", "toRecipients"},
	{"Received", "receivedDateTime"}, {"Size", "size"}, {"Body", "body"}}

var messageListColumns = []column{{"Id", "id"}, {"Received", "receivedDateTime"}, {"From", "from"}, {"To", "toRecipients"},
	{"Subject", "subject"}, {"Size", "size"}}

func mailboxCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "mailbox", Short: "Exchange mailboxes and their policy (Set-Mailbox -DataEncryptionPolicy, Get-MailboxStatistics)"}
	tenant := addTenantFlag(cmd)
	path := func(s *session, segments ...string) string {
		return tenantPath(s, *tenant, append([]string{"mailboxes"}, segments...)...)
	}
	identityFlag := func(c *cobra.Command, id *string) {
		c.Flags().StringVar(id, "identity", "", "the mailbox's id or SMTP address (required)")
		_ = c.MarkFlagRequired("identity")
	}

	var typ, address, display, owner string
	create := &cobra.Command{
		Use:   "create --primary-smtp-address ADDRESS [--type UserMailbox|MailUser|SharedMailbox|GroupMailbox|PublicFolder] [--display-name NAME] [--owner USER]",
		Short: "Create a mailbox (UserMailbox and MailUser need an owner with an Exchange licence)",
		Args:  cobra.NoArgs,
		RunE: g.runE(func(cmd *cobra.Command, s *session, pr printer) error {
			in := map[string]string{"type": typ, "primarySmtpAddress": address, "displayName": display, "owner": owner}
			raw, err := s.callRaw(cmd.Context(), http.MethodPost, path(s), in)
			if err != nil {
				return err
			}
			return printOne(pr, raw, mailboxColumns)
		}),
	}
	create.Flags().StringVar(&typ, "type", "UserMailbox", "UserMailbox, MailUser, SharedMailbox, GroupMailbox or PublicFolder")
	create.Flags().StringVar(&address, "primary-smtp-address", "", "the mailbox's address (required)")
	create.Flags().StringVar(&display, "display-name", "", "display name")
	create.Flags().StringVar(&owner, "owner", "", "the owning user's id or user principal name")
	_ = create.MarkFlagRequired("primary-smtp-address")

	list := &cobra.Command{
		Use:   "list",
		Short: "List mailboxes (Get-Mailbox)",
		Args:  cobra.NoArgs,
		RunE: g.runE(func(cmd *cobra.Command, s *session, pr printer) error {
			raw, err := s.callList(cmd.Context(), path(s))
			if err != nil {
				return err
			}
			return printMany(pr, raw, mailboxListColumns)
		}),
	}

	// one is a command on one mailbox that prints the object answered.
	one := func(use, short, method, action string, cols []column) *cobra.Command {
		var id string
		c := &cobra.Command{
			Use:   use,
			Short: short,
			Args:  cobra.NoArgs,
			RunE: g.runE(func(cmd *cobra.Command, s *session, pr printer) error {
				p := path(s, id)
				if action != "" {
					p = path(s, id, action)
				}
				raw, err := s.callRaw(cmd.Context(), method, p, nil)
				if err != nil {
					return err
				}
				if method == http.MethodDelete {
					fmt.Fprintf(cmd.ErrOrStderr(), "Deleted mailbox %s.\n", id)
				}
				return printOne(pr, raw, cols)
			}),
		}
		identityFlag(c, &id)
		return c
	}
	show := one("show --identity ID|ADDRESS", "Show a mailbox (Get-Mailbox -Identity)", http.MethodGet, "", mailboxColumns)
	stats := one("statistics --identity ID|ADDRESS", "Show whether a mailbox is encrypted and under which policy (Get-MailboxStatistics)",
		http.MethodGet, "statistics", statisticsColumns)
	del := one("delete --identity ID|ADDRESS", "Delete a mailbox", http.MethodDelete, "", nil)

	var setID, policy string
	var clear bool
	set := &cobra.Command{
		Use:   "set --identity ID|ADDRESS (--data-encryption-policy NAME|ID | --clear-data-encryption-policy)",
		Short: "Assign a mailbox policy to a mailbox, or remove it (Set-Mailbox -DataEncryptionPolicy <policy>|$null)",
		Long: `Assign a mailbox policy to a mailbox. The mailbox is rewrapped under it in the
background: Get-MailboxStatistics (mailbox statistics) shows IsEncrypted and
DataEncryptionPolicyID once done. --clear-data-encryption-policy ($null)
returns the mailbox to the multi-workload policy, if one is assigned, or to
service-managed keys; its data is not purged.`,
		Args: cobra.NoArgs,
		RunE: g.runE(func(cmd *cobra.Command, s *session, pr printer) error {
			in := map[string]any{"dataEncryptionPolicy": policy}
			if clear {
				in["dataEncryptionPolicy"] = nil
			}
			raw, err := s.callRaw(cmd.Context(), http.MethodPatch, path(s, setID), in)
			if err != nil {
				return err
			}
			return printOne(pr, raw, mailboxColumns)
		}),
	}
	identityFlag(set, &setID)
	set.Flags().StringVar(&policy, "data-encryption-policy", "", "the mailbox policy's name or id")
	set.Flags().BoolVar(&clear, "clear-data-encryption-policy", false, "remove the mailbox's policy ($null)")
	set.MarkFlagsOneRequired("data-encryption-policy", "clear-data-encryption-policy")
	set.MarkFlagsMutuallyExclusive("data-encryption-policy", "clear-data-encryption-policy")

	cmd.AddCommand(create, list, show, set, stats, del)
	return cmd
}

func messageCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "message", Short: "Messages in a mailbox, kept encrypted under the mailbox's policy"}
	tenant := addTenantFlag(cmd)
	var mailbox string
	cmd.PersistentFlags().StringVar(&mailbox, "mailbox", "", "the mailbox's id or SMTP address (required)")
	_ = cmd.MarkPersistentFlagRequired("mailbox")
	path := func(s *session, segments ...string) string {
		return tenantPath(s, *tenant, append([]string{"mailboxes", mailbox, "messages"}, segments...)...)
	}

	var subject, from, body, bodyFile string
	var to []string
	put := &cobra.Command{
		Use:   "put --mailbox M --subject S --from ADDRESS --to ADDRESS[,…] (--body TEXT | --body-file FILE|-)",
		Short: "Store a message in a mailbox",
		Args:  cobra.NoArgs,
		RunE: g.runE(func(cmd *cobra.Command, s *session, pr printer) error {
			text := body
			if cmd.Flags().Changed("body-file") {
				b, err := readInput(cmd, bodyFile)
				if err != nil {
					return err
				}
				text = string(b)
			}
			in := map[string]any{"subject": subject, "from": from, "to": to, "body": text}
			raw, err := s.callRaw(cmd.Context(), http.MethodPost, path(s), in)
			if err != nil {
				return err
			}
			return printOne(pr, raw, messageListColumns)
		}),
	}
	put.Flags().StringVar(&subject, "subject", "", "subject")
	put.Flags().StringVar(&from, "from", "", "sender's address")
	put.Flags().StringSliceVar(&to, "to", nil, "recipients' addresses, comma-separated or repeated")
	put.Flags().StringVar(&body, "body", "", "the message's text")
	put.Flags().StringVar(&bodyFile, "body-file", "", "read the text from a file, or standard input with -")
	put.MarkFlagsMutuallyExclusive("body", "body-file")

	list := &cobra.Command{
		Use:   "list --mailbox M",
		Short: "List a mailbox's messages",
		Args:  cobra.NoArgs,
		RunE: g.runE(func(cmd *cobra.Command, s *session, pr printer) error {
			raw, err := s.callList(cmd.Context(), path(s))
			if err != nil {
				return err
			}
			return printMany(pr, raw, messageListColumns)
		}),
	}

	one := func(use, short, method string) *cobra.Command {
		var id string
		c := &cobra.Command{
			Use:   use,
			Short: short,
			Args:  cobra.NoArgs,
			RunE: g.runE(func(cmd *cobra.Command, s *session, pr printer) error {
				raw, err := s.callRaw(cmd.Context(), method, path(s, id), nil)
				if err != nil {
					return err
				}
				if method == http.MethodDelete {
					fmt.Fprintf(cmd.ErrOrStderr(), "Deleted message %s.\n", id)
				}
				return printOne(pr, raw, messageColumns)
			}),
		}
		c.Flags().StringVar(&id, "id", "", "the message's id (required)")
		_ = c.MarkFlagRequired("id")
		return c
	}
	cmd.AddCommand(put, list, one("get --mailbox M --id ID", "Read a message", http.MethodGet),
		one("delete --mailbox M --id ID", "Delete a message", http.MethodDelete))
	return cmd
}

// readInput reads a whole file, or standard input for "-" or "".
func readInput(cmd *cobra.Command, name string) ([]byte, error) {
	r, _, err := openInput(cmd, name)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}
