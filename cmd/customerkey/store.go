package main

import (
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/customerkey/customerkey/internal/app"
	"github.com/customerkey/customerkey/internal/config"
)

func storeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "store",
		Short: "Operate on the server's store while no server uses it",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(storeMigrateCmd())
	return cmd
}

func storeMigrateCmd() *cobra.Command {
	o := app.MigrateOptions{ConnectTimeout: config.Default().StoreConnectTimeout}
	cmd := &cobra.Command{
		Use:   "migrate --from bolt:PATH --to postgres://USER@HOST:PORT/DB",
		Short: "Copy the embedded store into PostgreSQL, verified by counts and checksums",
		Long: `Copy every record of the embedded store (bolt:PATH, PATH being the data
directory or its customerkey.db) into a PostgreSQL database, as stored:
values stay encrypted by the barrier and keep their versions, so the same
barrier.key opens the copy.

Stop the server first: the store file is locked while it runs. The target
must hold no records unless --force, which deletes them first. Afterwards
both sides are counted and summed (SHA-256 over every key, version and value
in key order); the command fails if they differ.

The database password comes from --to-password-file, PGPASSWORD or
~/.pgpass; do not put it in the URL, which shows in the process list.
Then start the server with --store and the same URL (see docs/operations.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Progress = cmd.OutOrStdout()
			o.Log = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			_, err := app.MigrateStore(cmd.Context(), o)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.From, "from", "", "source store: bolt:PATH (a data directory or its customerkey.db)")
	f.StringVar(&o.To, "to", "", "target database: postgres://USER@HOST:PORT/DB?sslmode=…")
	f.StringVar(&o.PasswordFile, "to-password-file", "", "file whose first line is the target database's password")
	f.BoolVar(&o.Force, "force", false, "delete whatever the target holds before copying")
	f.DurationVar(&o.ConnectTimeout, "connect-timeout", o.ConnectTimeout, "how long to retry a target that cannot be reached")
	_ = cmd.MarkFlagRequired("from")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}
