package vault

import "strings"

// Recovery levels, as Key Vault reports them in a key's
// attributes.recoveryLevel.
const (
	LevelPurgeable                                  = "Purgeable"
	LevelRecoverablePurgeable                       = "Recoverable+Purgeable"
	LevelCustomizedRecoverablePurgeable             = "CustomizedRecoverable+Purgeable"
	LevelRecoverable                                = "Recoverable"
	LevelCustomizedRecoverable                      = "CustomizedRecoverable"
	LevelRecoverableProtectedSubscription           = "Recoverable+ProtectedSubscription"
	LevelCustomizedRecoverableProtectedSubscription = "CustomizedRecoverable+ProtectedSubscription"
)

// RecoveryLevel derives the recovery level of v's contents, and how many
// days a deleted item stays recoverable, from its settings and whether its
// subscription is protected (feature
// Microsoft.Resources/mandatoryRetentionPeriodEnabled Registered):
//
//	soft delete off                              Purgeable                                     0
//	soft delete, protected subscription          (Customized)Recoverable+ProtectedSubscription 90 / N
//	soft delete, purge protection                (Customized)Recoverable                       90 / N
//	soft delete, neither                         (Customized)Recoverable+Purgeable             90 / N
//
// "Customized" means a retention shorter than 90 days. A protected
// subscription yields +ProtectedSubscription with or without purge
// protection: the setup guide has the admin enable soft delete and run
// Prepare, and then expects Recoverable+ProtectedSubscription (its
// troubleshooting names Recoverable+Purgeable as the state *before* the
// retention period is registered). The level's promise that nothing is
// purged early is kept by Service.Purge (and, in step 3, key purges),
// which refuse while the subscription is protected.
func RecoveryLevel(v Vault, protectedSubscription bool) (level string, recoverableDays int) {
	if !v.EnableSoftDelete {
		return LevelPurgeable, 0
	}
	days := v.SoftDeleteRetentionInDays
	if days <= 0 {
		days = DefaultRetentionDays
	}
	prefix := "Recoverable"
	if days < DefaultRetentionDays {
		prefix = "CustomizedRecoverable"
	}
	switch {
	case protectedSubscription:
		return prefix + "+ProtectedSubscription", days
	case v.EnablePurgeProtection:
		return prefix, days
	}
	return prefix + "+Purgeable", days
}

// PurgeAllowed reports whether a level lets a caller purge a deleted item
// before its scheduled purge date.
func PurgeAllowed(level string) bool { return strings.HasSuffix(level, "Purgeable") }
