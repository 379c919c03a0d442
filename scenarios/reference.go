package scenarios

import (
	"fmt"
	"slices"
	"strings"

	"github.com/bootsim/bootsim/sim"
	"github.com/bootsim/bootsim/storage"
)

// refEntry is one documented word of the scenario format: what it does
// and an example of it in YAML.
type refEntry struct {
	meaning, example string
}

// stepRef documents every step (TestReferenceIsComplete fails on a step
// without an entry).
var stepRef = map[string]refEntry{
	StepPowerOn:  {"Power the device on; the boot starts at the image at address 0.", "- power-on"},
	StepPowerCut: {"Cut power now, or armed: before, after or in the middle (torn) of a matching storage op, at a milestone, or after a delay; the next power-on is a step of its own.", "- power-cut: {torn: {op: program, region: active-app, nth: 5}, seed: 7}"},
	StepRemoveSD: {"Pull the SD card out (reads and writes fail until it goes back).", "- remove-sd"},
	StepInsertSD: {"Put the SD card back.", "- insert-sd"},
	StepReset:    {"Reset the device from outside: pin (the reset button), brown-out, or debugger (a probe's SYSRESETREQ, which the MCU records as a software reset).", "- reset: pin"},
	StepWait:     {"Let time pass: a duration, or until a condition holds (the step fails at its timeout, default 10m).", "- wait: {until: {event: registered}, timeout: 30s}"},
	StepCorrupt:  {"Flip bits of a region, at an offset or at seeded places (retention loss, a probe).", "- corrupt: {region: active-header, bits: 40, seed: 1}"},
	StepFault:    {"Arm a fault rule for the rest of the run (the rule language of --cut); a rule that never fires is reported. kind=read selects reads (counted on their own; modes io-error and bit-flip).", "- fault: kind=program,region=slot-0,nth=3,mode=bit-flip,seed=1"},
	StepCampaign: {"Start an update campaign on the service: a firmware, a manifest format, an attack on the manifest.", "- campaign: {firmware: app-v2}"},
	StepNetwork:  {"Take the device's link down or up, or make it corrupt, slow or stall.", "- network: down"},
	StepApp:      {"Make the running application do something: crash, confirm itself (chain), or plant an image as a compromised application would.", "- app: {plant: evil}"},
	StepAttack:   {"An attacker with the storage in hand: plant an image (with this device's header or a forged one), truncate or swap the slots, erase or tear SOTP or the chain's boot record.", "- attack: {plant: app-v1, header: device}"},
}

// condRef documents every wait condition.
var condRef = map[string]refEntry{
	CondAppRunning: {"An application is running.", "until: app-running"},
	CondHalted:     {"The CPU stopped for good.", "until: halted"},
	CondOff:        {"The device is off.", "until: off"},
	CondLockedUp:   {"The core locked up (a fault it cannot handle, no lockup reset).", "until: locked-up"},
	CondEvent:      {"A milestone was reported (see Milestones).", "until: {event: copy-done}"},
	CondRunning:    {"This firmware is running.", "until: {running: app-v2}"},
	CondBoots:      {"The device has booted this many times.", "until: {boots: 10}"},
	CondSerial:     {"The serial console showed this text.", `until: {serial: "Download completed"}`},
	CondState:      {"The device is in this state.", "until: {state: dead-end}"},
}

// invariantRef documents the invariants.
var invariantRef = map[string]string{
	InvNoBrick:     "After a power cycle an application of the vendor's runs again, within the recovery budget.",
	InvAuthentic:   "Only firmware the vendor built ever runs.",
	InvNoDowngrade: "The running version never goes below one that ran before (the chain does not promise it: it rolls back on purpose).",
	InvSOTPIntact:  "The root of trust in SOTP reads back as provisioned.",
}

// faultRef documents the fault modes.
var faultRef = map[storage.FaultMode]string{
	storage.FaultCutBefore: "Power is cut as the op starts: it never happens.",
	storage.FaultCutAfter:  "Power is cut once the op completes.",
	storage.FaultTorn:      "Power is cut in the middle of the op: part of it happened, seeded.",
	storage.FaultBitFlip:   "The op completes with a bit flipped, seeded; the device keeps running. On a read (kind=read), the data read has the bit flipped and the medium is unchanged.",
	storage.FaultIOError:   "The op fails with an I/O error. On a read (kind=read), nothing is delivered: the classic bootloader's block-device PAL reports success anyway.",
	storage.FaultStuckBit:  "A bit of the op's range sticks at a value from now on.",
	storage.FaultWearOut:   "The op's sector wears out: it fails from now on.",
	storage.FaultSDRemoved: "The SD card is pulled out during the op.",
}

// attackRef documents the attack kinds.
var attackRef = map[string]refEntry{
	AttackPlant:       {"Write a firmware to candidate slot 0 with a header: device (this device's, as its client wrote or would write) or forged (another key).", "- attack: {plant: evil, header: forged}"},
	AttackTruncate:    {"Cut the candidate in slot 0 short; its header stays.", "- attack: {truncate: 100KiB}"},
	AttackSwapSlots:   {"Exchange candidate slot 0 and the last slot, headers included.", "- attack: swap-slots"},
	AttackEraseSOTP:   {"Erase both SOTP areas (classic, hardened).", "- attack: erase-sotp"},
	AttackTearSOTP:    {"Tear the newest SOTP record (classic, hardened).", "- attack: tear-sotp"},
	AttackTearRecord:  {"Tear the newest copy of the chain's boot record.", "- attack: tear-record"},
	AttackEraseRecord: {"Erase both copies of the chain's boot record.", "- attack: erase-record"},
}

// Reference returns docs/scenarios.md: every step, condition,
// expectation, invariant, fault mode, attack, design-specific
// configuration key and milestone of the scenario format, with an
// example each, generated from the types the loader reads.
func Reference() string {
	var b strings.Builder
	b.WriteString(`# Scenario reference

Generated by ` + "`bootsim reference > docs/scenarios.md`" + ` from the types the loader reads;
` + "`go test ./scenarios -run TestReferenceIsCurrent`" + ` fails when this page is stale. The JSON Schema
(` + "`bootsim schema`" + `) has every key's type; this page says what each does, with an example.
A built-in scenario to start from: ` + "`bootsim show seed-update-flow > my.yaml`" + `.

A scenario file has: ` + "`scenario`" + ` (its name), ` + "`summary`" + `, ` + "`tags`" + `, ` + "`seed`" + `, ` + "`device`" + `
(board, profile, storage, configuration keys, client generation), ` + "`firmware`" + ` (the images, by name),
` + "`factory`" + ` (what the device holds before its first power-on), ` + "`steps`" + `, ` + "`expect`" + `,
` + "`budget`" + `, ` + "`sweep`" + ` (how a device recovers from an injected cut) and ` + "`profiles`" + ` (the other
designs it makes sense under, with what must hold there).

`)
	table := func(title, head string, rows [][3]string) {
		fmt.Fprintf(&b, "## %s\n\n| %s | meaning | example |\n| --- | --- | --- |\n", title, head)
		for _, r := range rows {
			fmt.Fprintf(&b, "| `%s` | %s | `%s` |\n", r[0], r[1], r[2])
		}
		b.WriteString("\n")
	}
	of := func(words, keys []string, ref map[string]refEntry) [][3]string {
		all := append(slices.Clone(words), keys...)
		slices.Sort(all)
		all = slices.Compact(all)
		var rows [][3]string
		for _, w := range all {
			rows = append(rows, [3]string{w, ref[w].meaning, ref[w].example})
		}
		return rows
	}
	table("Steps", "step", of(stepWords, stepKeys, stepRef))
	table("Wait conditions", "condition", of(condWords, condKeys, condRef))
	table("Expectations", "expectation", of(expectWords, expectKeys, expectRef))

	b.WriteString("## Invariants\n\nChecked after every run; a design that does not promise one shows its violation as a known weakness (WEAK).\n\n| invariant | meaning |\n| --- | --- |\n")
	for _, n := range Invariants {
		fmt.Fprintf(&b, "| `%s` | %s |\n", n, invariantRef[n])
	}
	b.WriteString("\n## Fault modes\n\nFor `fault:`, `power-cut: {rule: ...}`, `--cut` and `--faults` (e.g. `op=1234,mode=torn,seed=7`).\n\n| mode | meaning |\n| --- | --- |\n")
	for _, m := range storage.FaultModes() {
		fmt.Fprintf(&b, "| `%s` | %s |\n", m, faultRef[m])
	}
	var attacks []string
	for k := range attackRef {
		attacks = append(attacks, k)
	}
	slices.Sort(attacks)
	var rows [][3]string
	for _, k := range attacks {
		rows = append(rows, [3]string{k, attackRef[k].meaning, attackRef[k].example})
	}
	b.WriteString("\n")
	table("Attacks", "attack", rows)

	b.WriteString("## Configuration keys of the designs\n\n`device.config` takes the layout keys of `mbed_app.json` as `bootsim layout` prints them, and these:\n\n| key | design | example |\n| --- | --- | --- |\n")
	for _, k := range []struct{ key, profile, example string }{
		{"mbed-bootloader.max-copy-retries", ProfileClassic, "mbed-bootloader.max-copy-retries: 3"},
		{"mbed-bootloader.max-boot-retries", ProfileClassic, "mbed-bootloader.max-boot-retries: 5"},
	} {
		fmt.Fprintf(&b, "| `%s` | %s | `%s` |\n", k.key, k.profile, k.example)
	}
	for _, k := range hardenedKeys {
		fmt.Fprintf(&b, "| `%s` | %s | `%s: 1` |\n", k, ProfileHardened, k)
	}
	for _, k := range chainKeys {
		fmt.Fprintf(&b, "| `%s` | %s | `%s: 3` |\n", k, ProfileChain, k)
	}
	b.WriteString("\n## Boards\n\n`device: {board: ...}` takes a built-in board by its name or its Mbed target name, or the path of a board file of your own, relative to the scenario: `bootsim boards --show k64f > myboard.yaml` writes one to start from, with the source of each figure.\n\n`device: {mbed-app: mbed_app.json, target: K64F}` lays the classic device out as that `mbed_app.json` configures the target (the board is the target's unless `board:` names one): the update stack's library defaults, the file's `config`, its `target_overrides` for `*` and then the target, its `macros`, and the values' C expressions (`MBED_ROM_START`, `MBED_CONF_*`, arithmetic); `device.config` keys then apply on top. `bootsim layout --mbed-app mbed_app.json --target K64F` draws it, each key with the expression it came from.\n\n| board | Mbed target | |\n| --- | --- | --- |\n")
	for _, n := range sim.BoardNames() {
		if bd, err := sim.LoadBoard(n); err == nil {
			fmt.Fprintf(&b, "| `%s` | `%s` | %s, %s |\n", n, bd.MbedTarget, bd.Title, bd.MCU)
		}
	}
	b.WriteString("\n## Milestones\n\nWhat `event:`, `no-event:`, `wait: {until: {event: ...}}` and `power-cut: {event: ...}` may name (`bootsim events`).\n\n| milestone | designs | meaning |\n| --- | --- | --- |\n")
	for _, m := range Milestones() {
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", m.Name, strings.Join(m.Profiles, ", "), m.Meaning)
	}
	return b.String()
}
