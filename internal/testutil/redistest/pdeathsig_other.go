//go:build !linux

package redistest

import "os/exec"

// setParentDeathSignal is a no-op where the kernel offers no equivalent; Main
// and t.Cleanup still stop servers on a normal exit.
func setParentDeathSignal(*exec.Cmd) {}
