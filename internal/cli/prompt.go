package cli

import (
	"bufio"
	"fmt"
	"strings"

	"github.com/google/uuid"
)

// confirm asks a yes/no question on the terminal. Without a terminal it
// refuses unless --yes was given: a script must say so explicitly.
func (c *cli) confirm(question string, yes bool) error {
	if yes {
		return nil
	}
	if !c.out.ttyIn || !c.out.ttyErr {
		return usageErr("confirmation needed and standard input is not a terminal: pass --yes (or --dry-run to look first)")
	}
	fmt.Fprintf(c.env.Err, "%s [y/N] ", question)
	line, _ := bufio.NewReader(c.env.In).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return failedErr("aborted: nothing was changed")
}

// newRequestID is a fresh AIP-155 request id: it makes a transport retry
// safe without ever replaying an older, different call.
func newRequestID() string { return uuid.NewString() }

// plural returns "1 workspace" / "2 workspaces".
func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", word)
	}
	if word == "person" {
		return fmt.Sprintf("%d people", n)
	}
	return fmt.Sprintf("%d %ss", n, word)
}
