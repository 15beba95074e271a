package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/customerkey/customerkey/internal/app"
	"github.com/customerkey/customerkey/internal/config"
)

// addHSMFlags adds the flags of the HSM configuration keys.
func addHSMFlags(f *pflag.FlagSet, cfg *config.Config) {
	f.StringVar(&cfg.HSMModule, "hsm-module", "", "PKCS#11 library of the HSM (enables RSA-HSM and EC-HSM keys in premium vaults)")
	f.StringVar(&cfg.HSMToken, "hsm-token", "", "label of the HSM token to use")
	f.StringVar(&cfg.HSMPINFile, "hsm-pin-file", "", "file holding the token's user PIN (mode 0600; default: $CUSTOMERKEY_HSM_PIN)")
	f.IntVar(&cfg.HSMMaxSessions, "hsm-max-sessions", 0, "HSM sessions used at once (0: twice the CPUs, at least 4)")
}

// mergeHSMFlags copies the HSM flags that were given from cfg into merged.
func mergeHSMFlags(fs *pflag.FlagSet, merged *config.Config, cfg config.Config) {
	if fs.Changed("seal") {
		merged.Seal = cfg.Seal
	}
	if fs.Changed("hsm-module") {
		merged.HSMModule = cfg.HSMModule
	}
	if fs.Changed("hsm-token") {
		merged.HSMToken = cfg.HSMToken
	}
	if fs.Changed("hsm-pin-file") {
		merged.HSMPINFile = cfg.HSMPINFile
	}
	if fs.Changed("hsm-max-sessions") {
		merged.HSMMaxSessions = cfg.HSMMaxSessions
	}
}

func sealCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "seal",
		Short: "Manage what seals the store's keyring: the root key file or the HSM",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(sealMigrateCmd())
	return cmd
}

func sealMigrateCmd() *cobra.Command {
	cfg := config.Default()
	var file, to string
	cmd := &cobra.Command{
		Use:   "migrate --to pkcs11|file",
		Short: "Re-seal the store's keyring with the HSM (or back with a root key file)",
		Long: `Re-seal the keyring that unlocks the store with a key held in the HSM
(--to pkcs11), so that a copy of the data directory reveals nothing without
the HSM and its PIN. The data keys stay the same, so nothing else is
rewritten. The store is checked to open with the new seal before the root
key file barrier.key is overwritten and removed. Then start the server with
seal: pkcs11 and the same hsm- settings.

--to file does the reverse, writing a new barrier.key (for example to retire
an HSM). Stop the server first (every node, with a shared store). It reads
the same configuration file and flags as serve; see docs/hsm.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			merged := config.Default()
			if file != "" {
				if err := merged.LoadFile(file); err != nil {
					return err
				}
			}
			fs := cmd.Flags()
			if fs.Changed("data-dir") {
				merged.DataDir = cfg.DataDir
			}
			if fs.Changed("store") {
				merged.Store = cfg.Store
			}
			if fs.Changed("store-password-file") {
				merged.StorePasswordFile = cfg.StorePasswordFile
			}
			mergeHSMFlags(fs, &merged, cfg)
			if err := merged.Complete(); err != nil {
				return err
			}
			if err := merged.Validate(); err != nil {
				return fmt.Errorf("configuration:\n%w", err)
			}
			return app.MigrateSeal(cmd.Context(), merged, to, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&to, "to", "", "pkcs11 (the HSM) or file (a new barrier.key)")
	f.StringVar(&file, "config", "", "the server's YAML configuration file")
	f.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "data directory")
	f.StringVar(&cfg.Store, "store", cfg.Store, "bolt or the postgres:// URL of the store")
	f.StringVar(&cfg.StorePasswordFile, "store-password-file", "", "file whose first line is the database password")
	addHSMFlags(f, &cfg)
	_ = cmd.MarkFlagRequired("to")
	return cmd
}
