package main

import (
	"github.com/spf13/cobra"

	"github.com/customerkey/customerkey/internal/app"
	"github.com/customerkey/customerkey/internal/config"
)

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
			merged, err := configFrom(file, cmd.Flags(), bindStore)
			if err != nil {
				return err
			}
			return app.MigrateSeal(cmd.Context(), merged, to, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&to, "to", "", "pkcs11 (the HSM) or file (a new barrier.key)")
	f.StringVar(&file, "config", "", "the server's YAML configuration file")
	bindStore(f, &cfg)
	_ = cmd.MarkFlagRequired("to")
	return cmd
}
