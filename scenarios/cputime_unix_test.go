//go:build unix

package scenarios

import (
	"syscall"
	"time"
)

// processCPU is the CPU time the process has used, user and system: what a
// sweep on several workers costs, to compare with a sum of recoveries.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
