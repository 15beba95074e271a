package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
)

// This file holds what the commands of the policies and the workloads they
// protect share: the --tenant flag, paths under
// /customerkey/v1/tenants/{tenant}, raw-byte transfers, and the human view
// of the API's JSON objects.

const tenantFlagHelp = "tenant id or verified domain (default the signed-in tenant)"

// addTenantFlag gives every sub-command of noun a --tenant flag.
func addTenantFlag(noun *cobra.Command) *string {
	var t string
	noun.PersistentFlags().StringVar(&t, "tenant", "", tenantFlagHelp)
	return &t
}

// tenantPath is /customerkey/v1/tenants/{tenant}/{segments...} with each
// segment escaped; an empty tenant is the signed-in one.
func tenantPath(s *session, tenant string, segments ...string) string {
	var b strings.Builder
	b.WriteString("/customerkey/v1/tenants/")
	b.WriteString(url.PathEscape(firstNonEmpty(tenant, s.prof.TenantID)))
	for _, seg := range segments {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(seg))
	}
	return b.String()
}

// runE is the RunE of a command that needs the session and the printer.
func (g *globals) runE(run func(cmd *cobra.Command, s *session, pr printer) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		s, pr, err := g.begin(cmd)
		if err != nil {
			return err
		}
		return run(cmd, s, pr)
	}
}

// callRaw calls the control API and returns its answer as the server wrote
// it (nil when it sent none), so that -o json prints the API's own JSON.
func (s *session) callRaw(ctx context.Context, method, path string, in any) (json.RawMessage, error) {
	var raw json.RawMessage
	if err := s.call(ctx, armScope, method, path, in, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// callList calls a list endpoint ({"value":[…],"nextPageToken":…}) and
// returns the items of every page as one array.
func (s *session) callList(ctx context.Context, path string) (json.RawMessage, error) {
	items := []json.RawMessage{}
	token := ""
	for {
		p := path
		if token != "" {
			p += "?pageToken=" + url.QueryEscape(token)
		}
		var page struct {
			Value []json.RawMessage `json:"value"`
			Next  string            `json:"nextPageToken"`
		}
		if err := s.call(ctx, armScope, http.MethodGet, p, nil, &page); err != nil {
			return nil, err
		}
		items = append(items, page.Value...)
		if page.Next == "" {
			return json.Marshal(items)
		}
		// A server that ignored the token would send the same page forever.
		if page.Next == token {
			return nil, fmt.Errorf("the server answered GET %s with the page token it was given; the list cannot be followed", path)
		}
		token = page.Next
	}
}

// transfer sends body (nil for none) as raw bytes, with the headers hdr
// (nil for none), and returns the answer for the caller to read and close.
// size is the body's length, or -1 when unknown (standard input), which is
// sent chunked. Files and ciphertexts may take longer than the 60 s the
// JSON calls are allowed, so only ctx bounds the transfer.
func (s *session) transfer(ctx context.Context, method, path string, hdr http.Header, body io.Reader, size int64) (*http.Response, error) {
	tok, err := s.token(ctx, armScope)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, s.prof.Endpoint+path, body)
	if err != nil {
		return nil, err
	}
	maps.Copy(req.Header, hdr)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/octet-stream, application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
		if size >= 0 {
			req.ContentLength = size
		}
	}
	hc := *s.http
	hc.Timeout = 0
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reaching %s: %w", s.prof.Endpoint, err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return nil, answerError(resp.StatusCode, raw)
	}
	return resp, nil
}

// answerError decodes an error answer of the control API, as call does.
func answerError(status int, raw []byte) error {
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &e) == nil && e.Error.Message != "" {
		return &apiError{Status: status, Code: e.Error.Code, Message: e.Error.Message}
	}
	return &apiError{Status: status, Message: strings.TrimSpace(string(raw))}
}

// column is one field of the human view: its heading, the name the cmdlet
// shows it under, and its key in the API's JSON.
type column struct{ name, key string }

// object is a JSON object of an answer, field by field.
type object map[string]json.RawMessage

// text renders a field the way PowerShell shows values: strings as they
// are, True/False, lists joined by ", ", nothing for null or absent.
func (o object) text(key string) string { return valueText(o[key]) }

func valueText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	switch raw[0] {
	case 'n':
		return ""
	case 't':
		return "True"
	case 'f':
		return "False"
	case '"':
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	case '[':
		var items []json.RawMessage
		if json.Unmarshal(raw, &items) == nil {
			parts := make([]string, len(items))
			for i, it := range items {
				parts[i] = valueText(it)
			}
			return strings.Join(parts, ", ")
		}
	case '{':
		var b bytes.Buffer
		if json.Compact(&b, raw) == nil {
			return b.String()
		}
	}
	return string(raw)
}

// keysInOrder lists the keys of a JSON object in the order the server
// wrote them (a map would lose it).
func keysInOrder(raw json.RawMessage) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errNotObject
	}
	var keys []string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, errNotObject
		}
		keys = append(keys, t.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, errNotObject
		}
	}
	return keys, nil
}

var errNotObject = errors.New("the server's answer is not a JSON object")

// pascal turns an API key into the PowerShell-style heading of a field
// the command does not name itself: primarySmtpAddress → PrimarySmtpAddress.
func pascal(key string) string {
	if key == "" {
		return key
	}
	return strings.ToUpper(key[:1]) + key[1:]
}

// printOne prints one object: as the API wrote it with -o json, otherwise
// as a key/value block of cols, followed by any field the server sent that
// cols do not name (so nothing it says is hidden). An empty answer prints
// nothing.
func printOne(pr printer, raw json.RawMessage, cols []column) error {
	if len(raw) == 0 {
		return nil
	}
	var o object
	if err := json.Unmarshal(raw, &o); err != nil {
		return errNotObject
	}
	keys, err := keysInOrder(raw)
	if err != nil {
		return err
	}
	named := make(map[string]bool, len(cols))
	fields := make([][2]string, 0, len(keys)+len(cols))
	for _, c := range cols {
		named[c.key] = true
		fields = append(fields, [2]string{c.name, o.text(c.key)})
	}
	for _, k := range keys {
		if !named[k] {
			fields = append(fields, [2]string{pascal(k), o.text(k)})
		}
	}
	return pr.printFields(raw, fields)
}

// printMany prints a JSON array of objects: as the API wrote it with
// -o json, otherwise as a table of cols.
func printMany(pr printer, raw json.RawMessage, cols []column) error {
	var items []object
	if err := json.Unmarshal(raw, &items); err != nil {
		return errors.New("the server's answer is not a list of objects")
	}
	headers := make([]string, len(cols))
	for i, c := range cols {
		headers[i] = c.name
	}
	rows := make([][]string, len(items))
	for i, it := range items {
		rows[i] = make([]string, len(cols))
		for j, c := range cols {
			rows[i][j] = it.text(c.key)
		}
	}
	return pr.print(raw, headers, rows)
}
