package vault_test

import (
	"fmt"

	"github.com/customerkey/customerkey/internal/vault"
)

// The recovery level the Customer Key onboarding rule expects needs soft
// delete with 90 days and a protected subscription (the seed's Prepare).
func ExampleRecoveryLevel() {
	v := vault.Vault{EnableSoftDelete: true, SoftDeleteRetentionInDays: 90}
	fmt.Println(vault.RecoveryLevel(v, false))
	v.EnablePurgeProtection = true
	fmt.Println(vault.RecoveryLevel(v, false))
	fmt.Println(vault.RecoveryLevel(v, true))
	// Output:
	// Recoverable+Purgeable 90
	// Recoverable 90
	// Recoverable+ProtectedSubscription 90
}
