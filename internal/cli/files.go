package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
)

var siteColumns = []column{{"Url", "url"}, {"Geo", "geo"}, {"Owners", "owners"}, {"Id", "id"}}

var fileColumns = []column{{"Path", "path"}, {"Size", "size"}, {"Modified", "lastModifiedDateTime"}, {"ModifiedBy", "lastModifiedBy"}}

// siteEncryptionColumns are what Get-SPOSiteDataEncryptionPolicy reports
// of a site: the policy its key is wrapped under, and whether that is the
// policy key's current version (false while a roll is on its way).
var siteEncryptionColumns = []column{{"DataEncryptionPolicyId", "policyId"}, {"KeyVersion", "keyVersion"}, {"Current", "current"}}

func siteCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "site", Short: "SharePoint and OneDrive sites (Get-SPOSiteDataEncryptionPolicy)"}
	tenant := addTenantFlag(cmd)
	path := func(s *session, segments ...string) string {
		return tenantPath(s, *tenant, append([]string{"sites"}, segments...)...)
	}
	siteFlag := func(c *cobra.Command, site *string) {
		c.Flags().StringVar(site, "site", "", "the site's URL or id (required)")
		_ = c.MarkFlagRequired("site")
	}

	var siteURL, geo string
	var owners []string
	create := &cobra.Command{
		Use:   "create --url URL [--geo GEO] [--owner USER]...",
		Short: "Create a site; its files are encrypted under the geo's policy",
		Args:  cobra.NoArgs,
		RunE: g.runE(func(cmd *cobra.Command, s *session, pr printer) error {
			in := map[string]any{"url": siteURL, "geo": geo, "owners": owners}
			raw, err := s.callRaw(cmd.Context(), http.MethodPost, path(s), in)
			if err != nil {
				return err
			}
			return printOne(pr, raw, siteColumns)
		}),
	}
	create.Flags().StringVar(&siteURL, "url", "", "the site's URL, e.g. https://contoso.sharepoint.com/sites/finance (required)")
	create.Flags().StringVar(&geo, "geo", defaultGeo, "the geo its files are kept in")
	create.Flags().StringArrayVar(&owners, "owner", nil, "an owner's user id or user principal name (repeatable)")
	_ = create.MarkFlagRequired("url")

	list := &cobra.Command{
		Use:   "list",
		Short: "List sites",
		Args:  cobra.NoArgs,
		RunE: g.runE(func(cmd *cobra.Command, s *session, pr printer) error {
			raw, err := s.callList(cmd.Context(), path(s))
			if err != nil {
				return err
			}
			return printMany(pr, raw, siteColumns)
		}),
	}
	one := func(use, short, action string, cols []column) *cobra.Command {
		var site string
		c := &cobra.Command{
			Use:   use,
			Short: short,
			Args:  cobra.NoArgs,
			RunE: g.runE(func(cmd *cobra.Command, s *session, pr printer) error {
				segments := []string{site}
				if action != "" {
					segments = append(segments, action)
				}
				raw, err := s.callRaw(cmd.Context(), http.MethodGet, path(s, segments...), nil)
				if err != nil {
					return err
				}
				return printOne(pr, raw, cols)
			}),
		}
		siteFlag(c, &site)
		return c
	}
	cmd.AddCommand(create, list, one("show --site URL|ID", "Show a site", "", siteColumns),
		one("encryption --site URL|ID", "Show the policy a site's key is wrapped under (Get-SPOSiteDataEncryptionPolicy)", "encryption", siteEncryptionColumns))
	return cmd
}

// filePath escapes a file's path within a site segment by segment. The
// server routes by the cleaned path, so empty, "." and ".." segments would
// name another file than the one given: they are refused.
func filePath(p string) (string, error) {
	segs := strings.Split(strings.TrimPrefix(p, "/"), "/")
	for i, seg := range segs {
		if seg == "" || seg == "." || seg == ".." {
			return "", fmt.Errorf("--path %q: give a path such as Shared Documents/report.docx, without empty, . or .. parts", p)
		}
		segs[i] = url.PathEscape(seg)
	}
	return strings.Join(segs, "/"), nil
}

func fileCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "file", Short: "Files in a site, kept encrypted under the geo's policy"}
	tenant := addTenantFlag(cmd)
	var site string
	cmd.PersistentFlags().StringVar(&site, "site", "", "the site's URL or id (required)")
	_ = cmd.MarkPersistentFlagRequired("site")
	filesPath := func(s *session) string { return tenantPath(s, *tenant, "sites", site, "files") }
	// one is a command on one file: --path, and --file for put and get.
	one := func(use, short string, run func(cmd *cobra.Command, s *session, pr printer, p, local string) error, local bool) *cobra.Command {
		var p, file string
		c := &cobra.Command{
			Use:   use,
			Short: short,
			Args:  cobra.NoArgs,
			RunE: g.runE(func(cmd *cobra.Command, s *session, pr printer) error {
				fp, err := filePath(p)
				if err != nil {
					return err
				}
				return run(cmd, s, pr, filesPath(s)+"/"+fp, file)
			}),
		}
		c.Flags().StringVar(&p, "path", "", "the file's path within the site (required)")
		_ = c.MarkFlagRequired("path")
		if local {
			c.Flags().StringVar(&file, "file", "-", "the local file; - is standard input or output")
		}
		return c
	}

	put := one("put --site URL --path PATH [--file LOCAL|-]", "Upload a file (from standard input without --file)",
		func(cmd *cobra.Command, s *session, pr printer, p, local string) error {
			body, size, err := openInput(cmd, local)
			if err != nil {
				return err
			}
			defer body.Close()
			resp, err := s.transfer(cmd.Context(), http.MethodPut, p, nil, body, size)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			return printJSONAnswer(pr, resp)
		}, true)
	get := one("get --site URL --path PATH [--file LOCAL|-]", "Download a file (to standard output without --file)",
		func(cmd *cobra.Command, s *session, pr printer, p, local string) error {
			resp, err := s.transfer(cmd.Context(), http.MethodGet, p, nil, nil, 0)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			return writeOutput(cmd, local, resp.Body)
		}, true)
	del := one("delete --site URL --path PATH", "Delete a file",
		func(cmd *cobra.Command, s *session, pr printer, p, _ string) error {
			raw, err := s.callRaw(cmd.Context(), http.MethodDelete, p, nil)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "Deleted.")
			return printOne(pr, raw, nil)
		}, false)
	list := &cobra.Command{
		Use:   "list --site URL",
		Short: "List a site's files",
		Args:  cobra.NoArgs,
		RunE: g.runE(func(cmd *cobra.Command, s *session, pr printer) error {
			raw, err := s.callList(cmd.Context(), filesPath(s))
			if err != nil {
				return err
			}
			return printMany(pr, raw, fileColumns)
		}),
	}
	cmd.AddCommand(put, get, list, del)
	return cmd
}

// printJSONAnswer prints the answer of a raw-byte upload when it is a JSON
// object (what the server recorded); other answers carry nothing to show.
func printJSONAnswer(pr printer, resp *http.Response) error {
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" {
		return nil
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if raw = bytes.TrimSpace(raw); len(raw) == 0 {
		return nil
	}
	return printOne(pr, json.RawMessage(raw), nil)
}

// openInput opens the file name, or standard input for "-" or "", and
// tells its size (-1 when unknown).
func openInput(cmd *cobra.Command, name string) (io.ReadCloser, int64, error) {
	if name == "" || name == "-" {
		return io.NopCloser(cmd.InOrStdin()), -1, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

// writeOutput copies r to standard output ("-" or "") or to the file name.
// A file is written beside its final name and renamed into place, so that
// a failed download never leaves a truncated file behind; it is created
// readable by its owner only, as the data may be confidential.
func writeOutput(cmd *cobra.Command, name string, r io.Reader) error {
	if name == "" || name == "-" {
		_, err := io.Copy(cmd.OutOrStdout(), r)
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		return err
	}
	if _, err = io.Copy(tmp, r); err == nil {
		err = tmp.Close()
	} else {
		tmp.Close()
	}
	if err == nil {
		err = os.Rename(tmp.Name(), name)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}
