// Package dep owns the data encryption policies of Customer Key: the
// multi-workload policies (M365DataAtRestEncryptionPolicy) and their one
// assignment per tenant, the Exchange mailbox policies
// (DataEncryptionPolicy), the SharePoint geo policies (one per geo, whose
// policy key is the tenant intermediate key) and the service-managed
// defaults; their policy keys; the unwrap rules with the availability key;
// and the purge and recovery paths (customer-key-spec.md §a, §b.3–b.6,
// §c.2, §d).
//
// # Key hierarchy
//
// Every policy has one AES-256 policy key per key version, generated in
// memory and stored only wrapped: by each customer root key (RootKeys.Wrap
// as the workload identity of the policy's kind), and by the policy's own
// availability key, an AES-256 key kept in the store or, with Options.HSM,
// generated in the HSM and never leaving it (the HSM then seals and opens
// that copy). A service-managed default is wrapped only by the operator
// key, also kept in the store. The
// store is the barrier, so nothing here reaches disk unencrypted. Scope keys
// (mailbox, site and scope keys of the workloads) are sealed with package
// envelope under a policy key version: the blob names the policy id and key
// version, and its additional data binds the tenant and the caller's aad.
// Refresh wraps the same policy key afresh under the root keys' current
// versions; Replace and a SharePoint key roll create a new policy key; in
// every case the key version grows by one and older versions stay stored,
// so that everything sealed under them still opens (rule V20).
//
// # Unwrap rules and the cache
//
// Unwrapped policy keys are cached in memory as ciphers for
// Options.CacheLifetime (default 10 minutes), which is therefore the
// documented revocation latency on a node: a revoked root key stops new
// unwraps at once, and a cached key stops working at the latest when its
// entry expires. An entry in use is refreshed from the root keys in the
// background during the last quarter of its life; an unused one expires and
// is dropped. Concurrent misses for one key version share one round trip.
// Exchange and multi-workload policies ask one root key chosen at random,
// then the other; when all fail, the availability key is used (and audited
// as "Fallback to Availability Key") if any failure was transient, or if
// all were revocations and the purpose is system work; a user request whose
// root keys were all revoked fails with PermissionDenied. Keys unwrapped
// with the availability key are never cached, so every use is audited.
// SharePoint asks both root keys as a hedged pair and never uses the
// availability key by itself.
//
// # Purge
//
// An Exchange or SharePoint policy can be purged after the customer revoked
// the workload's access to every root key (checked live) and two different
// Global Administrators of the operator approved. The purge is a persisted
// job: the workloads delete the data under the policy, then the wrapped
// policy key copies and the availability key are deleted and the policy
// stays as a tombstone; an availability key kept in the HSM is then
// destroyed there, which crypto-shreds whatever the store's freed pages
// still hold of the policy's keys. A job interrupted by a crash or an
// unreachable HSM is resumed by ResumePurges.
//
// dep owns the storage prefix "dep/" and records every change in the
// tenant's audit log in the same transaction. It imports secret, errkind,
// the storage port, audit and notify (which tells the other nodes on the
// store to drop a policy's cached keys), and of its own level envelope (the sealed
// format), directory (Caller, Tenant, roles, the workload application ids),
// onboarding (Scenario, for the enabled scenarios) and vault (Vault, for
// the subscription that holds a vault). It reaches everything else through
// the interfaces it declares (RootKeys, Directory, Scenarios, Vaults,
// Subscriptions, Scopes, HSMKeys). It must not import net/http or any storage
// implementation.
package dep
