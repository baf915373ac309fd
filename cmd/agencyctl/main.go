// Command agencyctl is the operator's command line for agencyd (see
// internal/cli and the README's Operators section).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/agencyplane/agencyplane/internal/cli"
)

func main() {
	// Ctrl-C cancels the context: a followed operation detaches, it goes on.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], cli.OSEnv())
	stop()
	os.Exit(code)
}
