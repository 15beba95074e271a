package graph

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseFilter(t *testing.T) {
	tests := []struct {
		in   string
		want filter
	}{
		{"appId eq 'c066d759-24ae-40e7-a56f-027002b5d3e4'", filter{{Prop: "appId", Value: "c066d759-24ae-40e7-a56f-027002b5d3e4"}}},
		{"servicePrincipalNames/any(c:c eq 'x')", filter{{Prop: "servicePrincipalNames", Var: "c", Value: "x"}}},
		{"servicePrincipalNames/any( x :  x  eq 'x' )", filter{{Prop: "servicePrincipalNames", Var: "x", Value: "x"}}},
		{"displayName eq 'O''Brien'", filter{{Prop: "displayName", Value: "O'Brien"}}},
		{"displayName eq ''", filter{{Prop: "displayName", Value: ""}}},
		{"displayName eq ''''", filter{{Prop: "displayName", Value: "'"}}},
		{"displayName eq 'Ünïcødé and eq'", filter{{Prop: "displayName", Value: "Ünïcødé and eq"}}},
		{"  principalId eq 'a'   and roleDefinitionId eq 'b'  ", filter{{Prop: "principalId", Value: "a"}, {Prop: "roleDefinitionId", Value: "b"}}},
		{"a eq '1' and b/any(v:v eq '2') and c eq '3' and d eq '4'", filter{{Prop: "a", Value: "1"}, {Prop: "b", Var: "v", Value: "2"}, {Prop: "c", Value: "3"}, {Prop: "d", Value: "4"}}},
	}
	for _, tc := range tests {
		got, err := parseFilter(tc.in)
		if err != nil {
			t.Errorf("parseFilter(%q) err = %v, want nil", tc.in, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("parseFilter(%q) mismatch (-want +got):\n%s", tc.in, diff)
		}
	}

	bad := []string{
		"", " ", "appId", "appId eq", "appId eq x", "appId eq 'x", "appId ne 'x'", "appId EQ 'x'", "appId eq 'x' or b eq 'y'",
		"appId eq 'x' and", "and eq 'x'", "eq eq 'x'", "(appId eq 'x')", "appId eq 'x')", "not appId eq 'x'",
		"startswith(displayName,'a')", "servicePrincipalNames/all(c:c eq 'x')", "servicePrincipalNames/any(c:d eq 'x')",
		"servicePrincipalNames/any(c:c eq 'x'", "servicePrincipalNames/any(c c eq 'x')", "servicePrincipalNames/any()",
		"servicePrincipalNames/any(c:c eq 'x') eq 'y'", "appId eq 'x' and appId eq 'y' and appId eq 'z' and a eq 'b' and c eq 'd'",
		"appId eq 42", "appId eq null", "appId eq \"x\"", "appId\teq 'x'", "appId eq 'x' 'y'", "appId eq '\xff'", "appId eq'x'", "appId eq 'x'and b eq 'y'", "appId eq 'x' andb eq 'y'",
		"1appId eq 'x'", "app-Id eq 'x'",
	}
	for _, in := range bad {
		if f, err := parseFilter(in); err == nil {
			t.Errorf("parseFilter(%q) = %v, want an error", in, f)
		}
	}
}

func TestParseKeyed(t *testing.T) {
	tests := []struct {
		in   string
		want keyed
		ok   bool
	}{
		{"applications(appId='a')", keyed{"applications", "a"}, true},
		{"servicePrincipals(appId='it''s')", keyed{"servicePrincipals", "it's"}, true},
		{"servicePrincipals(appId='a')x", keyed{}, false},
		{"servicePrincipals(appId=a)", keyed{}, false},
		{"servicePrincipals(appId='a'", keyed{}, false},
		{"servicePrincipals(displayName='a')", keyed{}, false},
		{"users(appId='a')", keyed{}, false},
		{"applications", keyed{}, false},
		{"applications(appId='a')')", keyed{}, false},
	}
	for _, tc := range tests {
		got, ok := parseKeyed(tc.in)
		if ok != tc.ok || got != tc.want {
			t.Errorf("parseKeyed(%q) = %+v, %v; want %+v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzParseFilter checks that no input panics, and that whatever parses
// prints back to a filter that parses to the same clauses.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{
		"appId eq 'c066d759-24ae-40e7-a56f-027002b5d3e4'",
		"servicePrincipalNames/any(c:c eq '00000002-0000-0ff1-ce00-000000000000')",
		"principalId eq 'a' and roleDefinitionId eq 'b'",
		"displayName eq 'O''Brien'",
		"servicePrincipalNames/any(x: x eq 'y'",
		"'", "''''", "a/any(", "and and and",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseFilter(s)
		if err != nil {
			if _, ok := err.(*filterError); !ok {
				t.Fatalf("parseFilter(%q) err = %T %v, want *filterError", s, err, err)
			}
			return
		}
		if len(got) == 0 || len(got) > maxClauses {
			t.Fatalf("parseFilter(%q) = %d clauses, want 1 to %d", s, len(got), maxClauses)
		}
		again, err := parseFilter(got.String())
		if err != nil {
			t.Fatalf("parseFilter(%q) err = %v; it is the printing of parseFilter(%q)", got.String(), err, s)
		}
		if diff := cmp.Diff(got, again); diff != "" {
			t.Fatalf("round trip of %q mismatch (-first +second):\n%s", s, diff)
		}
	})
}
