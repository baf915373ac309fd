// Package cli is agencyctl, the operator's command line for agencyd: every
// command, the connection settings (flags, environment, contexts in a
// config file), CSV import and onboarding, live progress and the reports.
// cmd/agencyctl only calls Main.
//
// Exit codes are part of the contract: 0 when everything asked for
// succeeded, 1 when any workspace failed (or agencyd could not be reached,
// or refused the credentials), 2 on usage errors (bad flags, arguments or
// CSV input; nothing is sent then), 3 when `plan` found changes, 130 when
// Ctrl-C detached from an operation (which goes on).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
)

// Streams are the process's standard streams; tests and main pass their own.
type Streams struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

// Env is what agencyctl reads from its surroundings.
type Env struct {
	Streams
	// Getenv reads an environment variable (os.Getenv in main).
	Getenv func(string) string
}

// OSEnv is the real process environment.
func OSEnv() Env {
	return Env{Streams: Streams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}, Getenv: os.Getenv}
}

// Main runs agencyctl with args (without the program name) and returns the
// exit code. ctx is cancelled on Ctrl-C.
func Main(ctx context.Context, args []string, env Env) int {
	c := newCLI(env)
	defer c.close()
	root := c.rootCmd()
	root.SetArgs(args)
	root.SetIn(env.In)
	root.SetOut(env.Out)
	root.SetErr(env.Err)
	err := root.ExecuteContext(ctx)
	return c.exit(err)
}

// cli holds one invocation's settings and connection; nothing outlives it.
type cli struct {
	env Env

	// Global flags.
	addr, token, tokenFile string
	httpAddr               string
	caFile, certFile, key  string
	contextName            string
	configPath             string
	output                 string
	timeout                time.Duration

	out  *printer
	conn *grpc.ClientConn
	ep   *endpoint // resolved on first use
}

func newCLI(env Env) *cli {
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	return &cli{env: env}
}

func (c *cli) close() {
	if c.conn != nil {
		_ = c.conn.Close()
	}
}

func (c *cli) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "agencyctl",
		Short: "Operate agencyd: client workspaces, members, tags, keys, onboarding",
		Long: `agencyctl talks to agencyd over gRPC.

Connection: --addr (or AGENCY_ADDR, or the current context of the config
file), --token-file or AGENCY_TOKEN (--token works too but shows in ps), or
else the identity provider's token 'agencyctl login' cached; TLS with
--ca/--cert/--key or an https:// address.

Exit codes: 0 everything succeeded, 1 a workspace failed or agencyd could
not be reached, 2 usage error (nothing sent), 3 'plan' found changes,
130 detached with Ctrl-C.`,
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{HiddenDefaultCmd: false},
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return c.setup(cmd)
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&c.addr, "addr", "", "agencyd gRPC address host:port, or https://host:port for TLS (env AGENCY_ADDR; default 127.0.0.1:9090)")
	pf.StringVar(&c.httpAddr, "http-addr", "", "agencyd HTTP address host:port or http(s)://host:port, for the HTTP-only endpoints (scim release; env AGENCY_HTTP_ADDR; default the --addr host, port 8080)")
	pf.StringVar(&c.token, "token", "", "bearer token (visible in ps: prefer --token-file or AGENCY_TOKEN)")
	pf.StringVar(&c.tokenFile, "token-file", "", "file holding the bearer token")
	pf.StringVar(&c.caFile, "ca", "", "PEM CA bundle to verify agencyd (turns TLS on)")
	pf.StringVar(&c.certFile, "cert", "", "PEM client certificate for mTLS (turns TLS on)")
	pf.StringVar(&c.key, "key", "", "PEM private key of --cert")
	pf.StringVar(&c.contextName, "context", "", "context of the config file to use (env AGENCY_CONTEXT)")
	pf.StringVar(&c.configPath, "config", "", "config file (env AGENCYCTL_CONFIG; default <user config dir>/agencyctl/config.yaml)")
	pf.StringVarP(&c.output, "output", "o", "", "output format: json or yaml (default: tables for people)")
	pf.DurationVar(&c.timeout, "timeout", 30*time.Second, "deadline of each call to agencyd")
	_ = root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageErr(fmt.Sprintf("%v\nSee '%s --help'.", err, cmd.CommandPath()))
	})

	root.AddCommand(
		c.workspacesCmd(),
		c.membersCmd(),
		c.accessCmd(),
		c.invitationsCmd(),
		c.tagsCmd(),
		c.keysCmd(),
		c.onboardCmd(),
		c.offboardCmd(),
		c.planCmd(),
		c.applyCmd(),
		c.driftCmd(),
		c.scimCmd(),
		c.opsCmd(),
		c.auditCmd(),
		c.tokensCmd(),
		c.configCmd(),
		c.loginCmd(),
		c.logoutCmd(),
	)
	for _, cmd := range root.Commands() {
		groupArgs(cmd)
	}
	return root
}

// groupArgs makes a command group (a command without its own action)
// refuse an unknown subcommand as a usage error instead of printing help
// and exiting 0.
func groupArgs(cmd *cobra.Command) {
	if cmd.Runnable() || !cmd.HasSubCommands() {
		return
	}
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usageErr(fmt.Sprintf("unknown command %q for %q\nSee '%s --help'.", args[0], cmd.CommandPath(), cmd.CommandPath()))
		}
		return cmd.Help()
	}
}

// setup checks the global flags before any command runs.
func (c *cli) setup(cmd *cobra.Command) error {
	switch c.output {
	case "", "json", "yaml":
	case "table", "human":
		c.output = ""
	default:
		return usageErr(fmt.Sprintf("--output %q: want json or yaml", c.output))
	}
	if c.timeout <= 0 {
		return usageErr("--timeout must be positive")
	}
	c.out = newPrinter(c.env, c.output)
	return nil
}

// action wraps a command's work so every error it returns leaves with an
// exit code: usage errors stay 2, anything else is 1. Errors cobra raises
// itself (unknown commands, bad flags or arguments) never pass here and
// are usage errors too.
func (c *cli) action(fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		err := fn(cmd, args)
		if err == nil {
			return nil
		}
		var ee *exitError
		if errors.As(err, &ee) {
			return err
		}
		if cmd.Context().Err() != nil { // Ctrl-C cut a call short
			return &exitError{code: exitInterrupted, msg: "interrupted"}
		}
		return c.failure(err)
	}
}

// exit prints err (one line, never the token) and returns the exit code.
func (c *cli) exit(err error) int {
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if !errors.As(err, &ee) {
		// cobra's own errors: unknown command, bad flag, wrong arguments.
		ee = &exitError{code: exitUsage, msg: err.Error() + "\nRun 'agencyctl --help' for usage."}
	}
	if ee.msg != "" {
		fmt.Fprintln(c.env.Err, "agencyctl: "+c.scrub(ee.msg))
	}
	return ee.code
}

// scrub removes the token from a message, whatever produced it.
func (c *cli) scrub(msg string) string {
	for _, t := range []string{c.token, c.resolvedToken()} {
		if len(t) >= 4 {
			msg = strings.ReplaceAll(msg, t, "[token]")
		}
	}
	return msg
}

func (c *cli) resolvedToken() string {
	if c.ep == nil {
		return ""
	}
	return c.ep.token
}

// exactArgs is cobra.ExactArgs with a message that names what is expected.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErr(fmt.Sprintf("want %s, got %d argument(s)", what, len(args)))
		}
		return nil
	}
}

// minArgs is cobra.MinimumNArgs with a message that names what is expected.
func minArgs(n int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) < n {
			return usageErr("want " + what)
		}
		return nil
	}
}
