// Package identity owns the token service: the signing keys (RSA-2048,
// RS256, rotated, published as JWKS), the issuance and verification of
// access tokens and ID tokens, client authentication (client secrets and
// certificate client assertions), the device code, authorization code
// (with PKCE) and refresh token grants, and the throttling of failed
// sign-ins. Its state lives under the storage prefix "identity/"; every
// issued token and every refusal is recorded in the audit log of the
// tenant that was asked.
//
// It is a level-3 domain package: it imports errkind, secret, storage (the
// port only), audit, notify and directory from this module, and go-jose for
// JOSE.
// It must not import net/http server types, httpx, any adapter, or a
// storage implementation; package oauthapi puts it on the wire.
//
// What is kept only in memory, per process, and why that is acceptable:
// the parsed public keys and the verified-token cache (rebuilt from the
// store), and the sign-in throttling counters (a client spreading its
// guesses over N nodes gets N times the budget; the budget is small and
// the directory's own work per guess bounds the rest).
package identity
