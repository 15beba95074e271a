// Command customerkey is the customerkey server (`customerkey serve`) and
// the command-line client for every setup step.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/customerkey/customerkey/internal/app"
	"github.com/customerkey/customerkey/internal/buildinfo"
	"github.com/customerkey/customerkey/internal/cli"
	"github.com/customerkey/customerkey/internal/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := &cobra.Command{
		Use:           "customerkey",
		Short:         "Customer-held root keys for a multi-tenant service",
		Version:       buildinfo.String(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serveCmd(), storeCmd(), sealCmd())
	cli.AddCommands(root)
	root.SetArgs(cli.RewriteCmdlet(os.Args[1:]))
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "customerkey:", err)
		os.Exit(1)
	}
}

func serveCmd() *cobra.Command {
	cfg := config.Default()
	var file, pprofAddr string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the server: identity, Graph, Resource Manager, key vaults and Customer Key APIs",
		Long: `Run the server on one HTTPS port.

On first start it creates, under --data-dir: the store, the barrier root key,
a local CA (ca.pem) and server certificate, the operator tenant with its admin
application, and operator.json (mode 0600) with the operator's credentials.
Later starts reuse all of it. SIGTERM or Ctrl-C shuts down gracefully.

With --store postgres://… the store is that database, which several nodes
may share; each node's data directory still needs the same barrier.key
(docs/operations.md).

A YAML file given with --config may set any flag by its name; flags win.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			merged, err := configFrom(file, cmd.Flags(), bindServe)
			if err != nil {
				return err
			}
			log := newLogger(merged)
			if pprofAddr != "" {
				if err := servePprof(cmd.Context(), pprofAddr, log); err != nil {
					return err
				}
			}
			return app.Run(cmd.Context(), merged, log)
		},
	}
	f := cmd.Flags()
	f.StringVar(&file, "config", "", "YAML configuration file")
	f.StringVar(&pprofAddr, "pprof-listen", "", "serve Go profiling endpoints on this loopback address (for performance work; off by default)")
	bindServe(f, &cfg)
	return cmd
}

func newLogger(c config.Config) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
