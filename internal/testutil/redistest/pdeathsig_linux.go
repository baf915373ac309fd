//go:build linux

package redistest

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal makes the kernel SIGKILL redis-server if the test
// binary dies without running cleanups (e.g. a -timeout panic), so no server
// outlives its tests.
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
