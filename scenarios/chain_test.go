package scenarios

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// chainBase is a valid chain scenario the error cases edit.
const chainBase = `scenario: chain-test
summary: A chain device.
device: {board: k64f, profile: chain}
firmware:
  bl-v1: {stage: bootloader, version: 1, size: 32KiB}
  app-v1: {version: 1, size: 64KiB}
  app-v2: {version: 2, size: 64KiB}
factory:
  bootloaders: [bl-v1]
  applications: [app-v1, app-v2]
  trial: [app-v2]
steps:
  - power-on
`

func TestChainLoads(t *testing.T) {
	l, err := Load("t.yaml", []byte(chainBase), nil)
	require.NoError(t, err)
	require.NotNil(t, l.Chain)
	require.Equal(t, ProfileChain, l.Profile)
}

// TestChainLoadErrors: what the chain profile cannot do is refused at
// file:line:col, as every load error is.
func TestChainLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"active in chain", strings.Replace(chainBase, "factory:", "factory:\n  active: app-v1", 1), `factory: the chain profile stores versions in bootloaders and applications`},
		{"no bootloader", strings.Replace(chainBase, "  bootloaders: [bl-v1]\n", "", 1), `factory.bootloaders: the chain profile needs at least one bootloader version`},
		{"app as bootloader", strings.Replace(chainBase, "bootloaders: [bl-v1]", "bootloaders: [app-v1]", 1), `factory.bootloaders: app-v1 is an application image`},
		{"same version", strings.Replace(chainBase, "app-v2: {version: 2", "app-v2: {version: 1", 1), `app-v1 and app-v2 have the same version 1`},
		{"trial not stored", strings.Replace(chainBase, "trial: [app-v2]", "trial: [app-v3]", 1), `factory.trial: app-v3 is not stored`},
		{"too many versions", strings.Replace(chainBase, "applications: [app-v1, app-v2]", "applications: [app-v1, app-v2, app-v1, app-v2]", 1), `factory.applications: 4 versions for 3 slots`},
		{"bad bootloader behaviour", strings.Replace(chainBase, "stage: bootloader, version: 1", "stage: bootloader, version: 1, behaviour: sleepy", 1), `bootloader behaviour "sleepy"`},
		{"bad stage", strings.Replace(chainBase, "stage: bootloader", "stage: selector", 1), `stage "selector": want application or bootloader`},
		{"bad confirm", strings.Replace(chainBase, "app-v1: {version: 1,", "app-v1: {confirm: later, version: 1,", 1), `confirm "later": want auto or never`},
		{"too large", strings.Replace(chainBase, "app-v1: {version: 1, size: 64KiB}", "app-v1: {version: 1, size: 400KiB}", 1), `firmware app-v1: size 400KiB and its 120-byte signature do not fit the smallest application slot`},
		{"unknown key", strings.Replace(chainBase, "profile: chain}", "profile: chain, config: {chain.slots: 3}}", 1), `unknown configuration key "chain.slots" for the chain profile`},
		{"too many slots", strings.Replace(chainBase, "profile: chain}", "profile: chain, config: {chain.application-slots: 5}}", 1), `chain.application-slots: 5, want 1 to 4`},
		{"v3 campaign", chainBase + "  - campaign: {firmware: app-v2, manifest: v3}\n", `the chain profile's versions are v1 timestamps`},
		{"empty payload", chainBase + "  - campaign: {firmware: app-v2, payload: empty}\n", `an empty payload erases a classic candidate slot`},
		{"stage in classic", strings.Replace(chainBase, "profile: chain", "profile: classic", 1), `stage and confirm belong to the chain profile`},
		{"rot", strings.Replace(chainBase, "trial: [app-v2]", "trial: [app-v2]\n  rot: none", 1), `factory.rot: the chain profile keeps no SOTP`},
		{"confirm in classic", base + "  - app: confirm\n", `app: confirm belongs to the chain profile`},
	} {
		t.Run(tc.name, func(t *testing.T) { requireRefused(t, tc.yaml, tc.want) })
	}
}

// TestChainExpectationsLoad: the chain expectations name firmware of the
// right stage, and are refused on other profiles.
func TestChainExpectationsLoad(t *testing.T) {
	for _, tc := range []struct{ expect, want string }{
		{"bootloader: app-v1", "bootloader: app-v1 is not a bootloader image"},
		{"path: [app-v1/bl-v1]", "path: app-v1 is not a bootloader image"},
		{"path: [bl-v1]", `path: visit "bl-v1": write bootloader/application`},
		{"stored: {applications: [bl-v1]}", "stored: bl-v1 is not an application image"},
		{"stored: {}", "stored needs bootloaders, applications or both"},
	} {
		_, err := Load("t.yaml", []byte(chainBase+"expect:\n  - "+tc.expect+"\n"), nil)
		require.ErrorContains(t, err, tc.want, tc.expect)
	}
	_, err := Load("t.yaml", []byte(base+"expect:\n  - bootloader: app-v1\n"), nil)
	require.ErrorContains(t, err, "an expectation of the chain profile")
}

// TestLayoutErrorAtTheKey: a layout error points at the configuration key
// at fault, not at the first key of the section.
func TestLayoutErrorAtTheKey(t *testing.T) {
	y := strings.Replace(base, "board: k64f", "board: k64f\n  config:\n    mbed-bootloader.max-boot-retries: 3\n    update-client.storage-locations: 100000", 1)
	_, err := Load("t.yaml", []byte(y), nil)
	require.ErrorContains(t, err, "t.yaml:7:38: layout: update-client.storage-locations 100000: want 1 to 64")
	y = strings.Replace(base, "board: k64f", "board: k64f\n  config:\n    mbed-bootloader.max-boot-retries: 3\n    sotp-section-2-address: 0x8000", 1)
	_, err = Load("t.yaml", []byte(y), nil)
	require.ErrorContains(t, err, "t.yaml:7:29: layout: sotp-2 (0x8000..0x9000) overlaps sotp-1")
}
