package scenarios

import (
	"fmt"
	"slices"
	"strings"

	"github.com/bootsim/bootsim/bootloader"
	"github.com/bootsim/bootsim/chain"
	"github.com/bootsim/bootsim/hardened"
	"github.com/bootsim/bootsim/mbedos"
	"github.com/bootsim/bootsim/strictyaml"
	"github.com/bootsim/bootsim/updateclient"
)

// Milestone is a named event a stage reports (sim.Machine.Mark), or one
// the runner derives from the trace, that waits, expectations and power
// cuts name. The loader refuses a name that is not one of them: a wait or
// an expectation on a misspelt name would never match, and a no-event
// expectation on one would always pass.
type Milestone struct {
	Name string `json:"name"`
	// Profiles are the designs whose stages report it.
	Profiles []string `json:"profiles"`
	Meaning  string   `json:"meaning"`
}

var (
	allProfiles   = []string{ProfileChain, ProfileClassic, ProfileHardened}
	mbedProfiles  = []string{ProfileClassic, ProfileHardened}
	onlyClassic   = []string{ProfileClassic}
	onlyHardened  = []string{ProfileHardened}
	onlyChain     = []string{ProfileChain}
	chainHardened = []string{ProfileChain, ProfileHardened}
)

// milestones is every milestone, by name.
var milestones = []Milestone{
	{bootloader.MarkActiveEmpty, onlyClassic, "the bootloader found no active image header"},
	{bootloader.MarkActiveInvalid, mbedProfiles, "the active image failed its check (header, hash, or, hardened, its signature)"},
	{bootloader.MarkActiveValid, mbedProfiles, "the active image passed its check"},
	{updateclient.MarkActivated, allProfiles, "the update client committed the candidate (wrote its header, or recorded the version)"},
	{updateclient.MarkRunning, allProfiles, "an application started and reported itself up"},
	{chain.MarkAppRolledBack, onlyChain, "the chain bootloader gave up an application version (crash, hang, or failed verification)"},
	{"attacked", allProfiles, "a scenario's attack step wrote to the storage"},
	{bootloader.MarkAssert, onlyClassic, "an MBED_BOOTLOADER_ASSERT failed (the layout or the flash page does not suit the copy) and the bootloader waits for ever"},
	{bootloader.MarkBodyBegin, mbedProfiles, "the bootloader starts copying the image body into the active region"},
	{bootloader.MarkBootRetries, onlyClassic, "the classic boot counter reached mbed-bootloader.max-boot-retries"},
	{chain.MarkBootloaderRolledBack, onlyChain, "the boot selector gave up a bootloader version"},
	{bootloader.MarkBooting, mbedProfiles, "the bootloader jumps to the active image"},
	{bootloader.MarkCandidateFound, mbedProfiles, "the bootloader chose a candidate to install"},
	{hardened.MarkConfirmRecorded, onlyHardened, "the application recorded its confirmation; the counter is raised next"},
	{chain.MarkConfirmed, chainHardened, "the running version confirmed itself (chain: in the boot record; hardened: in SOTP)"},
	{bootloader.MarkCopyBegin, mbedProfiles, "the bootloader starts installing a candidate"},
	{bootloader.MarkCopyDone, mbedProfiles, "the installed image verified in the active region"},
	{bootloader.MarkCopyFailed, mbedProfiles, "an install failed"},
	{bootloader.MarkCounterRaised, onlyHardened, "the hardened bootloader raised the anti-rollback counter"},
	{bootloader.MarkDeadEnd, allProfiles, "nothing is left to run (classic: it halts; chain: every path failed)"},
	{updateclient.MarkDownloadAuthorize, allProfiles, "the application authorised the download"},
	{updateclient.MarkDownloadBegin, allProfiles, "the update client started downloading the payload"},
	{updateclient.MarkDownloadDone, allProfiles, "the whole payload is stored"},
	{updateclient.MarkDownloadResume, allProfiles, "a download resumed from its stored progress"},
	{bootloader.MarkDowngradeRefused, onlyHardened, "the hardened bootloader refused a version below its floor"},
	{bootloader.MarkEraseBegin, mbedProfiles, "the bootloader starts erasing the active region"},
	{updateclient.MarkEvicted, onlyChain, "a chain update took the slot of an older version"},
	{mbedos.MarkFatalError, allProfiles, "an application faulted and Mbed OS's fault handler reported it (it then resets by software or halts, per platform.fatal-error-auto-reboot-enabled)"},
	{updateclient.MarkFinalized, allProfiles, "the stored payload's SHA-256 matched the manifest"},
	{bootloader.MarkHeaderBegin, mbedProfiles, "the bootloader starts writing the active header"},
	{updateclient.MarkInstallAuthorize, allProfiles, "the application authorised the install"},
	{EventInstallRetried, mbedProfiles, "derived: an install began again after an interrupted one (a second copy-begin of the same version)"},
	{updateclient.MarkManifestFetched, allProfiles, "the update client fetched a manifest"},
	{updateclient.MarkManifestVerified, allProfiles, "the manifest's signature, ids and version passed"},
	{updateclient.MarkNotified, allProfiles, "the service pushed a manifest to the device"},
	{"planted", allProfiles, "a compromised application wrote its image as a candidate (app: plant)"},
	{mbedos.MarkRebootLimit, allProfiles, "an application's start found the error context's reboot count at platform.error-reboot-max and halted in mbed_die before main()"},
	{updateclient.MarkRebooting, allProfiles, "the update client is about to reboot into the bootloader"},
	{updateclient.MarkRegistered, allProfiles, "the application registered with the service"},
	{bootloader.MarkRetry, onlyHardened, "the hardened bootloader found nothing to run and will reset after a delay"},
	{bootloader.MarkRollback, onlyHardened, "the hardened bootloader restored its saved copy after a failed trial"},
	{bootloader.MarkSaveBegin, onlyHardened, "the hardened bootloader starts saving the active image"},
	{bootloader.MarkSaveDone, onlyHardened, "the saved copy is complete and verified"},
	{bootloader.MarkSignatureRejected, onlyHardened, "an image failed the vendor's signature check"},
	{bootloader.MarkStorageInitError, onlyClassic, "the candidate storage could not be initialised (no SD card)"},
	{bootloader.MarkTrialBoot, onlyHardened, "the hardened bootloader boots a version on trial (one attempt)"},
	{updateclient.MarkUpdateFailed, allProfiles, "the update client gave an update up (the result code says why)"},
	{bootloader.MarkVerifyBegin, mbedProfiles, "the bootloader starts verifying the installed image"},
	{updateclient.MarkWriteLost, onlyClassic, "a fragment write to the card failed and the block-device PAL never said so: the client waits for ever"},
}

// Milestones returns every milestone, sorted by name.
func Milestones() []Milestone {
	out := slices.Clone(milestones)
	slices.SortFunc(out, func(a, b Milestone) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// checkMilestone refuses a name that is not a milestone, suggesting the
// closest one.
func checkMilestone(name string, pos strictyaml.Pos, what string) error {
	var names []string
	for _, m := range milestones {
		if m.Name == name {
			return nil
		}
		names = append(names, m.Name)
	}
	hint := " (see 'bootsim events')"
	if c := strictyaml.Closest(name, names); c != "" {
		hint = fmt.Sprintf(" (did you mean %q? see 'bootsim events')", c)
	}
	return pos.Errorf("%s: %q is not a milestone%s", what, name, hint)
}
