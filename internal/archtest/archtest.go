// Package archtest enforces the layering of ARCHITECTURE.md §3: a package
// imports only packages of lower levels, or of its own level when its
// package doc names them; domain packages stay free of net/http; only the
// composition root picks a storage implementation; every package has a doc
// comment. It has no code of its own besides the table: see the tests.
package archtest

// Levels maps each package under internal/ to its level. A package missing
// here fails the test, so that a new package is placed on purpose.
var Levels = map[string]int{
	"secret": 0, "errkind": 0, "buildinfo": 0, "resourceid": 0, "heapgoal": 0,
	"kcrypto": 1, "jwk": 1, "storage": 1, "audit": 1, "config": 1, "pki": 1, "hsm": 1, "notify": 1,
	"storage/bolt": 2, "storage/postgres": 2, "storage/storagetest": 2, "barrier": 2, "hsm/hsmtest": 2, "notify/pgnotify": 2,
	"directory": 3, "identity": 3, "rbac": 3, "resources": 3, "vault": 3, "onboarding": 3, "dep": 3, "dep/deptest": 3,
	"envelope": 3, "workload/mail": 3, "workload/files": 3, "workload/encryption": 3, "workload/scope": 3,
	"httpx": 4, "akv": 4, "arm": 4, "graph": 4, "oauthapi": 4, "ckapi": 4, "keyprovider": 4,
	"app": 5, "cli": 5,
	"archtest": 6,
}

// Domain packages must not import HTTP server types.
var Domain = []string{"directory", "identity", "rbac", "resources", "vault", "onboarding", "dep", "envelope",
	"workload/mail", "workload/files", "workload/encryption", "workload/scope"}

// StorageImpls may be imported only by StorageImplUsers (and tests).
var (
	StorageImpls     = []string{"storage/bolt", "storage/postgres"}
	StorageImplUsers = []string{"app"}
)
