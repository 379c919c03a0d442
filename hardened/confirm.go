package hardened

import (
	"fmt"

	"github.com/bootsim/bootsim/sim"
)

// Milestones of the hardened profile's application side.
const (
	// MarkConfirmed: the application confirmed the version on trial.
	MarkConfirmed = "confirmed"
	// MarkConfirmRecorded: the confirmation is in the state record; the
	// counter is raised next.
	MarkConfirmRecorded = "confirm-recorded"
)

// ConfirmRunning confirms the running version if it is on trial, as the
// application does once it has reached the service: the bootloader keeps
// it and the counter rises to it.
func ConfirmRunning(m *sim.Machine, a Areas, version uint64) {
	st, err := Open(m.Internal(), a.A1, a.A2)
	if err != nil {
		m.Printf("confirm failed: %v\r\n", err)
		return
	}
	done, err := st.ConfirmState(version)
	if err == nil && done {
		// Between the two writes: a scenario can cut power here.
		m.Mark(MarkConfirmRecorded, fmt.Sprintf("version %d", version))
		err = st.Raise(version)
	}
	switch {
	case err != nil:
		m.Printf("confirm failed: %v\r\n", err)
	case done:
		m.Printf("version %d confirmed\r\n", version)
		m.Mark(MarkConfirmed, fmt.Sprintf("version %d", version))
	}
}
