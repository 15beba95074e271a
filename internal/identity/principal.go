package identity

import (
	"time"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/directory"
)

// Surface is an API surface that accepts tokens; each accepts only its own
// audiences.
type Surface int

// Surfaces.
const (
	// Graph is the Microsoft Graph subset: audience https://graph.microsoft.com.
	Graph Surface = iota
	// ResourceManager is the Azure Resource Manager subset and customerkey's
	// own API: https://management.azure.com, https://management.core.windows.net/
	// and the public URL.
	ResourceManager
	// KeyVault is the key vault data plane: the challenge resource
	// (https://<vault-dns-suffix>:<port>) and https://vault.azure.net.
	KeyVault
)

func (s Surface) String() string {
	switch s {
	case Graph:
		return "Microsoft Graph"
	case ResourceManager:
		return "Resource Manager"
	case KeyVault:
		return "Key Vault"
	}
	return "unknown surface"
}

// Well-known resource identifiers.
const (
	GraphResource     = "https://graph.microsoft.com"
	ARMResource       = "https://management.azure.com"
	ARMLegacyResource = "https://management.core.windows.net/"
	VaultResource     = "https://vault.azure.net"
)

// PrincipalType tells users from applications.
type PrincipalType string

// Principal types, as the idtyp claim names them.
const (
	UserPrincipal PrincipalType = "user"
	AppPrincipal  PrincipalType = "app"
)

// Principal is the verified subject of an access token.
type Principal struct {
	TenantID string
	// ObjectID is the user's or the service principal's object id in TenantID.
	ObjectID string
	// AppID is the client application the token was issued to.
	AppID string
	Type  PrincipalType
	// Name is the user principal name for users, the app's display name for apps.
	Name      string
	Audience  string
	ExpiresAt time.Time
	// TokenID is the jti claim, for audit.
	TokenID string
}

// Caller is the principal as the directory sees it.
func (p Principal) Caller() directory.Caller {
	return directory.Caller{Actor: p.Actor(), TenantID: p.TenantID}
}

// Actor is the principal as the audit log names it.
func (p Principal) Actor() audit.Actor {
	t, name := "servicePrincipal", p.AppID
	if p.Type == UserPrincipal {
		t, name = "user", p.Name
	}
	return audit.Actor{Type: t, ID: p.ObjectID, Name: name}
}
