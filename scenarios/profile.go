package scenarios

import (
	"slices"

	"github.com/bootsim/bootsim/sim"
	"github.com/bootsim/bootsim/sim/cloud"
	"github.com/bootsim/bootsim/storage"
	"github.com/bootsim/bootsim/strictyaml"
	"github.com/bootsim/bootsim/updateclient"
)

// Profile is an update design a scenario can run: the layout it lays on a
// board and the configuration keys that move it, what its firmware and
// factory state may be, the images of its own stages, the programs it
// registers on a machine, the factory state it writes, and the invariants
// it promises. A new profile is a new file that implements it and
// registers itself (registerProfile); the loader, the runner and the
// checks ask the scenario's profile, never its name.
type Profile interface {
	// Name is the profile's name in device.profile.
	Name() string
	// configure resolves the device for the profile: its layout on the
	// board, from the scenario's configuration keys.
	configure(l *Loaded, pos strictyaml.Pos) error
	// checkFirmware checks what the profile asks of a firmware, after the
	// checks every profile makes (name, version, size or file).
	checkFirmware(l *Loaded, f *Firmware) error
	// checkFactory checks the factory state.
	checkFactory(l *Loaded) error
	// checkStep refuses the steps the profile cannot play.
	checkStep(l *Loaded, st Step) error
	// buildImages builds the images of the profile's own stages (its
	// bootloaders, a boot selector) into out.
	buildImages(l *Loaded, out *images) error
	// newMachine builds a powered-off machine with the profile's programs
	// registered and every image known.
	newMachine(l *Loaded, imgs *images, seed uint64, from *storage.Snapshot, client *updateclient.Config, svc *cloud.Service) (*sim.Machine, error)
	// programFactory writes the factory state.
	programFactory(l *Loaded, m *sim.Machine, imgs *images) error
	// regions are the named parts of the layout.
	regions(l *Loaded) []storage.Region
	// invariant says whether the profile promises an invariant in the
	// scenario's configuration (a violation of one it does not promise is
	// a weakness), or that it does not apply, and why.
	invariant(l *Loaded, name string) (promised bool, notApplicable string)
	// canRun reports whether the factory state holds something that could
	// run (no-brick means nothing otherwise), and why not.
	canRun(l *Loaded) (bool, string)
	// recoveryBoots is the boot budget of a recovery by default.
	recoveryBoots(l *Loaded) int
}

var profiles = map[string]Profile{}

// registerProfile makes a profile available to scenarios.
func registerProfile(p Profile) {
	if profiles[p.Name()] != nil {
		panic("scenarios: profile " + p.Name() + " registered twice")
	}
	profiles[p.Name()] = p
}

// ProfileNames are the update designs a scenario can run, sorted.
func ProfileNames() []string {
	var out []string
	for n := range profiles {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// imageLocator is implemented by a profile whose regions hold an image
// after a header of its own: imageStart returns where the image in a
// region starts, or false for a region whose image starts at its start.
type imageLocator interface {
	imageStart(l *Loaded, region string, dev storage.Device) (uint64, bool)
}

// Regions returns the named regions of the scenario's device, as its
// profile lays them out.
func (l *Loaded) Regions() []storage.Region { return l.prof.regions(l) }
