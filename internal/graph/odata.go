package graph

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/customerkey/customerkey/internal/errkind"
)

// The $filter language of this subset is deliberately tiny: exactly the
// forms the Azure CLI, Azure PowerShell and the seed's steps send.
//
//	filter := clause { " and " clause }            (at most maxClauses)
//	clause := property " eq " string
//	        | property "/any(" var ":" var " eq " string ")"
//	string := "'" { char | "''" } "'"
//
// Anything else is refused with a message listing the forms the resource
// supports, rather than half-understood: a filter silently ignored would
// return objects the caller did not ask for.
const (
	maxFilterLen = 2048
	maxClauses   = 4
)

// clause is one comparison. For a lambda (Var != ""), the property is a
// collection and the clause holds when any element equals Value.
type clause struct {
	Prop  string
	Var   string
	Value string
}

// filter is a conjunction of clauses.
type filter []clause

// filterError is a syntax error at a byte offset of the filter.
type filterError struct {
	pos int
	msg string
}

func (e *filterError) Error() string { return fmt.Sprintf("%s at position %d", e.msg, e.pos) }

type tokKind int

const (
	tokEOF tokKind = iota
	tokIdent
	tokString
	tokPunct // one of ( ) / :
)

type token struct {
	kind  tokKind
	text  string // identifier, decoded string or punctuation
	pos   int
	space bool // preceded by a space, which OData requires around eq and and
}

func (t token) String() string {
	switch t.kind {
	case tokEOF:
		return "end of filter"
	case tokString:
		return "string " + quote(t.text)
	}
	return "'" + t.text + "'"
}

// lex splits s into tokens; runs of spaces separate them and are noted on
// the token that follows.
func lex(s string) ([]token, error) {
	var toks []token
	space := false
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ':
			i++
			space = true
			continue
		case c == '(' || c == ')' || c == '/' || c == ':':
			toks = append(toks, token{tokPunct, s[i : i+1], i, space})
			i++
		case c == '\'':
			v, n, err := scanString(s, i)
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{tokString, v, i, space})
			i = n
		case isIdentStart(c):
			j := i + 1
			for j < len(s) && isIdentPart(s[j]) {
				j++
			}
			toks = append(toks, token{tokIdent, s[i:j], i, space})
			i = j
		default:
			r, _ := utf8.DecodeRuneInString(s[i:])
			return nil, &filterError{i, fmt.Sprintf("unexpected character %q", r)}
		}
		space = false
	}
	return append(toks, token{tokEOF, "", len(s), false}), nil
}

func isIdentStart(c byte) bool { return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isIdentPart(c byte) bool  { return isIdentStart(c) || '0' <= c && c <= '9' }

// scanString reads the single-quoted literal starting at s[i] and returns
// its value and the offset just after it. Two quotes in a row stand for
// one quote in the value.
func scanString(s string, i int) (string, int, error) {
	if i >= len(s) || s[i] != '\'' {
		return "", i, &filterError{i, "expected a single-quoted string"}
	}
	var b strings.Builder
	for j := i + 1; j < len(s); j++ {
		if s[j] != '\'' {
			b.WriteByte(s[j])
			continue
		}
		if j+1 < len(s) && s[j+1] == '\'' {
			b.WriteByte('\'')
			j++
			continue
		}
		v := b.String()
		if !utf8.ValidString(v) {
			return "", i, &filterError{i, "the string is not valid UTF-8"}
		}
		return v, j + 1, nil
	}
	return "", i, &filterError{i, "unterminated string"}
}

// parseFilter parses s; it never panics, whatever s holds.
func parseFilter(s string) (filter, error) {
	if len(s) > maxFilterLen {
		return nil, &filterError{maxFilterLen, fmt.Sprintf("the filter is longer than %d bytes", maxFilterLen)}
	}
	toks, err := lex(s)
	if err != nil {
		return nil, err
	}
	p := parser{toks: toks}
	var f filter
	for {
		c, err := p.clause()
		if err != nil {
			return nil, err
		}
		f = append(f, c)
		t := p.next()
		if t.kind == tokEOF {
			return f, nil
		}
		if t.kind != tokIdent || t.text != "and" || !t.space || !p.toks[p.i].space {
			return nil, &filterError{t.pos, "expected ' and ' or the end of the filter, found " + t.String()}
		}
		if len(f) == maxClauses {
			return nil, &filterError{t.pos, fmt.Sprintf("at most %d clauses can be joined by 'and'", maxClauses)}
		}
	}
}

type parser struct {
	toks []token
	i    int
}

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tokEOF {
		p.i++
	}
	return t
}

func (p *parser) expect(kind tokKind, text, what string) (token, error) {
	t := p.next()
	if t.kind != kind || (text != "" && t.text != text) {
		return t, &filterError{t.pos, "expected " + what + ", found " + t.String()}
	}
	return t, nil
}

func (p *parser) clause() (clause, error) {
	prop, err := p.expect(tokIdent, "", "a property name")
	if err != nil {
		return clause{}, err
	}
	if prop.text == "and" || prop.text == "eq" {
		return clause{}, &filterError{prop.pos, "expected a property name, found " + prop.String()}
	}
	if p.toks[p.i].kind == tokPunct && p.toks[p.i].text == "/" {
		p.next()
		steps := []struct {
			kind       tokKind
			text, what string
		}{{tokIdent, "any", "'any'"}, {tokPunct, "(", "'('"}}
		for _, s := range steps {
			if _, err := p.expect(s.kind, s.text, s.what); err != nil {
				return clause{}, err
			}
		}
		v, err := p.expect(tokIdent, "", "a lambda variable")
		if err != nil {
			return clause{}, err
		}
		if _, err := p.expect(tokPunct, ":", "':'"); err != nil {
			return clause{}, err
		}
		v2, err := p.expect(tokIdent, "", "the lambda variable "+v.text)
		if err != nil {
			return clause{}, err
		}
		if v2.text != v.text {
			return clause{}, &filterError{v2.pos, "expected the lambda variable " + v.text + ", found " + v2.String()}
		}
		val, err := p.eq()
		if err != nil {
			return clause{}, err
		}
		if _, err := p.expect(tokPunct, ")", "')'"); err != nil {
			return clause{}, err
		}
		return clause{Prop: prop.text, Var: v.text, Value: val}, nil
	}
	val, err := p.eq()
	if err != nil {
		return clause{}, err
	}
	return clause{Prop: prop.text, Value: val}, nil
}

// eq reads "eq 'value'".
func (p *parser) eq() (string, error) {
	op, err := p.expect(tokIdent, "eq", "'eq' (the only supported operator)")
	if err != nil {
		return "", err
	}
	if !op.space {
		return "", &filterError{op.pos, "expected a space before 'eq'"}
	}
	t, err := p.expect(tokString, "", "a single-quoted string")
	if err == nil && !t.space {
		return "", &filterError{t.pos, "expected a space after 'eq'"}
	}
	return t.text, err
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// String formats f so that parseFilter reads it back unchanged.
func (f filter) String() string {
	parts := make([]string, len(f))
	for i, c := range f {
		if c.Var != "" {
			parts[i] = c.Prop + "/any(" + c.Var + ":" + c.Var + " eq " + quote(c.Value) + ")"
		} else {
			parts[i] = c.Prop + " eq " + quote(c.Value)
		}
	}
	return strings.Join(parts, " and ")
}

// prop is a filterable property of T.
type prop[T any] struct {
	name       string
	collection bool
	values     func(T) []string
}

func one[T any](f func(T) string) func(T) []string {
	return func(v T) []string { return []string{f(v)} }
}

// supported describes the filter forms props allow, for error messages.
func supported[T any](props []prop[T]) string {
	forms := make([]string, len(props))
	for i, p := range props {
		if p.collection {
			forms[i] = p.name + "/any(x:x eq '…')"
		} else {
			forms[i] = p.name + " eq '…'"
		}
	}
	return "supported $filter forms: " + strings.Join(forms, ", ") + ", and up to " + strconv.Itoa(maxClauses) + " of them joined by 'and'"
}

// bind checks f against the properties of one entity type and returns a
// predicate. Property names match regardless of case, as in Graph; values
// compare regardless of case, as Entra ID compares ids and names.
func bind[T any](f filter, entity string, props []prop[T]) (func(T) bool, error) {
	type bound struct {
		values func(T) []string
		value  string
	}
	var bs []bound
	for _, c := range f {
		i := slices.IndexFunc(props, func(p prop[T]) bool { return strings.EqualFold(p.name, c.Prop) })
		if i < 0 {
			return nil, errkind.Errorf(errkind.Invalid, "Unsupported or invalid query filter clause specified for property '%s' of resource '%s'; %s.",
				c.Prop, entity, supported(props)).WithCode("Request_UnsupportedQuery")
		}
		p := props[i]
		if p.collection != (c.Var != "") {
			form := p.name + " eq '…'"
			if p.collection {
				form = p.name + "/any(x:x eq '…')"
			}
			return nil, errkind.Errorf(errkind.Invalid, "The property '%s' of resource '%s' must be filtered as %s; %s.",
				p.name, entity, form, supported(props)).WithCode("Request_UnsupportedQuery")
		}
		bs = append(bs, bound{p.values, c.Value})
	}
	return func(v T) bool {
		for _, b := range bs {
			if !slices.ContainsFunc(b.values(v), func(s string) bool { return strings.EqualFold(s, b.value) }) {
				return false
			}
		}
		return true
	}, nil
}

// Paging: Graph pages every collection and clients follow @odata.nextLink.
const (
	defaultTop = 100
	maxTop     = 999
)

// query holds the system query options of a collection request.
type query struct {
	filter    filter
	top       int
	skipToken string // the id after which the page starts
	count     bool
}

// unsupportedOptions change what a collection holds or how it is ordered;
// ignoring them would answer a different question, so they are refused.
// $select only trims properties and is ignored.
var unsupportedOptions = []string{"$orderby", "$search", "$expand", "$skip", "$apply", "$compute"}

func badQuery(format string, args ...any) error {
	return errkind.Errorf(errkind.Invalid, format, args...).WithCode("BadRequest")
}

func parseQuery(raw, forms string) (query, error) {
	q := query{top: defaultTop}
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return q, badQuery("The query string is not valid: %v.", err)
	}
	for _, o := range unsupportedOptions {
		if _, ok := vals[o]; ok {
			return q, errkind.Errorf(errkind.Invalid, "The query option %s is not supported by this server; supported: $filter, $top, $count, $select (ignored).", o).
				WithCode("Request_UnsupportedQuery")
		}
	}
	single := func(name string) (string, bool, error) {
		v, ok := vals[name]
		if !ok {
			return "", false, nil
		}
		if len(v) != 1 {
			return "", false, badQuery("The query option %s is given more than once.", name)
		}
		return v[0], true, nil
	}
	if s, ok, err := single("$filter"); err != nil {
		return q, err
	} else if ok {
		f, err := parseFilter(s)
		if err != nil {
			return q, badQuery("Invalid filter clause: %v; %s.", err, forms)
		}
		q.filter = f
	}
	if s, ok, err := single("$top"); err != nil {
		return q, err
	} else if ok {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxTop {
			return q, badQuery("Invalid page size specified: '%s'. Must be between 1 and %d inclusive.", s, maxTop)
		}
		q.top = n
	}
	if s, ok, err := single("$skiptoken"); err != nil {
		return q, err
	} else if ok {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || len(b) == 0 || !utf8.Valid(b) {
			return q, badQuery("The $skiptoken is not valid; start again from the first page.")
		}
		q.skipToken = string(b)
	}
	if s, ok, err := single("$count"); err != nil {
		return q, err
	} else if ok {
		switch s {
		case "true":
			q.count = true
		case "false":
		default:
			return q, badQuery("The query option $count must be true or false, not '%s'.", s)
		}
	}
	return q, nil
}

// collection is a page of a Graph entity set.
type collection[J any] struct {
	Context  string `json:"@odata.context"`
	Count    *int   `json:"@odata.count,omitempty"`
	NextLink string `json:"@odata.nextLink,omitempty"`
	Value    []J    `json:"value"`
}

// listing describes how one entity set is filtered and paged.
type listing[T, J any] struct {
	set    string // entity set, for @odata.context: "servicePrincipals"
	entity string // entity type, for messages: "ServicePrincipal"
	props  []prop[T]
	id     func(T) string
	render func([]T) ([]J, error)
}

// write applies the request's query options to items and writes the page.
// Items are ordered by id, so a $skiptoken (the last id of the previous
// page) stays valid while objects are added or removed.
func (l listing[T, J]) write(a *API, w http.ResponseWriter, r *http.Request, items []T) error {
	q, err := parseQuery(r.URL.RawQuery, supported(l.props))
	if err != nil {
		return err
	}
	if q.filter != nil {
		match, err := bind(q.filter, l.entity, l.props)
		if err != nil {
			return err
		}
		items = slices.DeleteFunc(items, func(v T) bool { return !match(v) })
	}
	slices.SortFunc(items, func(x, y T) int { return strings.Compare(l.id(x), l.id(y)) })
	out := collection[J]{Context: a.context(r, l.set)}
	if q.count {
		n := len(items)
		out.Count = &n
	}
	if q.skipToken != "" {
		i, _ := slices.BinarySearchFunc(items, q.skipToken, func(v T, id string) int { return strings.Compare(l.id(v), id) })
		for i < len(items) && l.id(items[i]) <= q.skipToken {
			i++
		}
		items = items[i:]
	}
	if len(items) > q.top {
		items = items[:q.top]
		next := r.URL.Query()
		next.Set("$skiptoken", base64.RawURLEncoding.EncodeToString([]byte(l.id(items[len(items)-1]))))
		out.NextLink = a.base(r) + r.URL.EscapedPath() + "?" + encodeQuery(next)
	}
	if out.Value, err = l.render(items); err != nil {
		return err
	}
	if out.Value == nil {
		out.Value = []J{}
	}
	return writeJSON(w, http.StatusOK, out)
}

// encodeQuery is url.Values.Encode, except that the "$" of system query
// options stays readable in links, as in Graph's own nextLinks.
func encodeQuery(v url.Values) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(v)) {
		key := strings.ReplaceAll(url.QueryEscape(k), "%24", "$")
		for _, val := range v[k] {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(key + "=" + url.QueryEscape(val))
		}
	}
	return b.String()
}

// writeJSON writes v with Graph's content type and OData version header.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("graph: encoding response: %w", err)
	}
	w.Header().Set("Content-Type", "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8")
	w.Header().Set("OData-Version", "4.0")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, err = w.Write(b)
	return err
}

// dateTime is Graph's DateTimeOffset: UTC, whole seconds, with a Z.
type dateTime time.Time

const dateTimeLayout = "2006-01-02T15:04:05Z"

func (t dateTime) MarshalJSON() ([]byte, error) {
	if time.Time(t).IsZero() {
		return []byte("null"), nil
	}
	return []byte(`"` + time.Time(t).UTC().Format(dateTimeLayout) + `"`), nil
}

// UnmarshalJSON accepts RFC 3339 and, as Graph does, a time without a
// zone, read as UTC.
func (t *dateTime) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*t = dateTime{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errkind.New(errkind.Invalid, "a date and time must be a string such as 2026-01-31T00:00:00Z")
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02"} {
		if v, err := time.Parse(layout, s); err == nil {
			*t = dateTime(v.UTC())
			return nil
		}
	}
	return errkind.Errorf(errkind.Invalid, "the date and time %q is not valid; use a form such as 2026-01-31T00:00:00Z", s)
}
