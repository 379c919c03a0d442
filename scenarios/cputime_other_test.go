//go:build !unix

package scenarios

import "time"

// processCPU is not measured here: the benchmarks that report it say 0.
func processCPU() time.Duration { return 0 }
