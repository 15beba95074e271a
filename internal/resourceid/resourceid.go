// Package resourceid parses and builds Azure Resource Manager resource ids
// and scopes ("/subscriptions/{id}/resourceGroups/{rg}/providers/
// Microsoft.KeyVault/vaults/{name}/keys/{key}"). ARM compares ids without
// regard to case; Key returns the form to compare and to store by. It
// imports nothing from this module.
package resourceid

import (
	"errors"
	"strings"
)

// ID is a parsed scope: a subscription, a resource group, or a resource
// (with child resources) under a provider namespace.
type ID struct {
	SubscriptionID string
	ResourceGroup  string // empty for a subscription scope
	Namespace      string // e.g. Microsoft.KeyVault; empty above resources
	// Types and Names are the resource type chain and its names:
	// vaults/{v}/keys/{k} is Types [vaults keys], Names [v k].
	Types []string
	Names []string
}

// ErrInvalid is returned for a string that is not a scope.
var ErrInvalid = errors.New("resourceid: not a valid scope; expected /subscriptions/{id}[/resourceGroups/{name}[/providers/{namespace}/{type}/{name}...]]")

// Parse parses s. The literal segments are matched without regard to case
// and the parsed id keeps the names as given.
func Parse(s string) (ID, error) {
	var id ID
	if !strings.HasPrefix(s, "/") || strings.HasSuffix(s, "/") || strings.Contains(s, "//") {
		return id, ErrInvalid
	}
	seg := strings.Split(s[1:], "/")
	if len(seg) < 2 || !strings.EqualFold(seg[0], "subscriptions") || seg[1] == "" {
		return id, ErrInvalid
	}
	id.SubscriptionID = seg[1]
	seg = seg[2:]
	if len(seg) >= 2 && strings.EqualFold(seg[0], "resourceGroups") {
		id.ResourceGroup = seg[1]
		seg = seg[2:]
	}
	if len(seg) == 0 {
		return id, nil
	}
	if id.ResourceGroup == "" || len(seg) < 4 || !strings.EqualFold(seg[0], "providers") || len(seg)%2 != 0 {
		return ID{}, ErrInvalid
	}
	id.Namespace = seg[1]
	for i := 2; i < len(seg); i += 2 {
		if seg[i] == "" || seg[i+1] == "" {
			return ID{}, ErrInvalid
		}
		id.Types = append(id.Types, seg[i])
		id.Names = append(id.Names, seg[i+1])
	}
	return id, nil
}

// Subscription returns the id of a subscription.
func Subscription(sub string) ID { return ID{SubscriptionID: sub} }

// ResourceGroup returns the id of a resource group.
func ResourceGroup(sub, rg string) ID { return ID{SubscriptionID: sub, ResourceGroup: rg} }

// Vault returns the id of a key vault.
func Vault(sub, rg, name string) ID {
	return ID{SubscriptionID: sub, ResourceGroup: rg, Namespace: "Microsoft.KeyVault", Types: []string{"vaults"}, Names: []string{name}}
}

// Child returns the id of a child resource of id.
func (id ID) Child(typ, name string) ID {
	c := id
	c.Types = append(append([]string(nil), id.Types...), typ)
	c.Names = append(append([]string(nil), id.Names...), name)
	return c
}

// String formats id with ARM's casing of the literal segments.
func (id ID) String() string {
	var b strings.Builder
	b.WriteString("/subscriptions/")
	b.WriteString(id.SubscriptionID)
	if id.ResourceGroup != "" {
		b.WriteString("/resourceGroups/")
		b.WriteString(id.ResourceGroup)
	}
	if id.Namespace != "" {
		b.WriteString("/providers/")
		b.WriteString(id.Namespace)
		for i := range id.Types {
			b.WriteString("/" + id.Types[i] + "/" + id.Names[i])
		}
	}
	return b.String()
}

// Key is the case-folded form ARM compares by.
func (id ID) Key() string { return strings.ToLower(id.String()) }

// Type is the full resource type, e.g. Microsoft.KeyVault/vaults/keys;
// empty for subscriptions and resource groups.
func (id ID) Type() string {
	if id.Namespace == "" {
		return ""
	}
	return id.Namespace + "/" + strings.Join(id.Types, "/")
}

// Name is the last name of id.
func (id ID) Name() string {
	switch {
	case len(id.Names) > 0:
		return id.Names[len(id.Names)-1]
	case id.ResourceGroup != "":
		return id.ResourceGroup
	}
	return id.SubscriptionID
}

// Parent returns the scope that contains id, and false for a subscription.
func (id ID) Parent() (ID, bool) {
	switch {
	case len(id.Types) > 1:
		p := id
		p.Types, p.Names = id.Types[:len(id.Types)-1], id.Names[:len(id.Names)-1]
		return p, true
	case len(id.Types) == 1:
		return ResourceGroup(id.SubscriptionID, id.ResourceGroup), true
	case id.ResourceGroup != "":
		return Subscription(id.SubscriptionID), true
	}
	return ID{}, false
}

// Chain returns the scopes from the subscription down to id itself, the
// order in which role assignments are inherited.
func (id ID) Chain() []ID {
	var out []ID
	for cur, ok := id, true; ok; cur, ok = cur.Parent() {
		out = append(out, cur)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// Within reports whether id is scope itself or lies below it.
func (id ID) Within(scope ID) bool {
	k, s := id.Key(), scope.Key()
	return k == s || strings.HasPrefix(k, s+"/")
}
