package vault

import "strings"

// AllowsKeyOperation reports whether v's access policies grant the key
// permission perm (a KeyPermissions name of the swagger, e.g. "wrapKey",
// compared without regard to case) to a caller whose token was issued in
// tenantID for object objectID through application applicationID. It is
// the data-plane check for vaults with EnableRbacAuthorization false; for
// RBAC vaults it is always false, as access policies are ignored there.
//
// An entry applies when its tenant is the vault's and the caller's, its
// objectId is the caller's object, and either it has no applicationId or
// its applicationId is the caller's application. Our reading of the
// compound identity: an entry {objectId: user U, applicationId: app A}
// grants only while app A acts on behalf of user U (a delegated token with
// oid U and appid A); neither U through another client nor A's own service
// principal matches it. An entry without applicationId applies to the
// object whatever client it signs in with. Group object ids are not
// expanded: an entry for a group matches no one.
func (v Vault) AllowsKeyOperation(tenantID, objectID, applicationID, perm string) bool {
	if v.EnableRbacAuthorization || v.IsDeleted() || objectID == "" {
		return false
	}
	want, ok := canonical["keys"][fold(perm)]
	if !ok || want == "all" {
		return false
	}
	if !strings.EqualFold(tenantID, v.TenantID) {
		return false
	}
	for _, p := range v.AccessPolicies {
		if !strings.EqualFold(p.TenantID, v.TenantID) || !strings.EqualFold(p.ObjectID, objectID) {
			continue
		}
		if p.ApplicationID != "" && !strings.EqualFold(p.ApplicationID, applicationID) {
			continue
		}
		for _, k := range p.Permissions.Keys {
			if strings.EqualFold(k, want) || strings.EqualFold(k, "all") {
				return true
			}
		}
	}
	return false
}
