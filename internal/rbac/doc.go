// Package rbac owns Azure role-based access control for the Resource
// Manager subset and the key vault data plane: the built-in role
// definitions (with their real Azure GUIDs), custom role definitions, role
// assignments at subscription, resource group, vault and key scopes, and
// the evaluator that decides every management action (Check) and data
// action (CheckData). It owns the storage prefix "rbac/" and records every
// change to definitions and assignments, and every refused attempt, in the
// audit log of the scope's tenant, in the same transaction as the change.
//
// It is a level-3 domain package: it imports errkind, storage (the port
// only), audit, notify and resourceid from this module, and
// github.com/google/uuid.
// It does not import directory (same level): it declares the two small
// interfaces it needs, Directory (which directory.Directory satisfies) and
// ScopeResolver (implemented by the composition root over the resources
// package). It must not import net/http or a storage implementation; the
// arm and akv adapters put it on the wire.
//
// Semantics follow Azure: a principal's permissions at a scope are the
// union of the roles assigned to it at every scope of scope.Chain(); a role
// allows an action when one of its actions (or dataActions) matches and
// none of its notActions (notDataActions) does; "*" matches any run of
// characters, across "/" too, without regard to case. Management actions
// and data actions are separate: Owner and Contributor grant no data
// access. A principal never gets access to a scope of another tenant, even
// if an assignment record says so. Group membership is not evaluated (the
// directory has no groups). Role assignment conditions are refused, except
// the one of Key Vault Data Access Administrator, which is enforced in code.
//
// What is kept only in memory, per process: the effective assignments of
// each principal that asked recently, and the tenant of each subscription
// seen recently (bounded; see Options.CacheTTL and Options.CacheSize). A
// change made through this process invalidates them at once; a change made
// by another node arrives through Options.Bus (PostgreSQL's NOTIFY, in
// milliseconds) and invalidates them there too. When a notification is
// lost, the change is seen after at most CacheTTL (default 5 s): that is
// the longest a revoked role assignment keeps working on a node that did
// not make the change.
package rbac
