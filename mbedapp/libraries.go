package mbedapp

import "sort"

// library is the configuration a library's mbed_lib.json declares: its
// parameters with their defaults and macro names, and its macros.
type library struct {
	name   string
	params []Param
	macros []string
}

// libraries are the update stack's libraries whose parameters place the
// layout, with the defaults of their mbed_lib.json in PelionIoT/
// mbed-bootloader at d02afab (mbed_lib.json, and
// modules/update-client-common/mbed_lib.json for update-client). Only the
// parameters bootsim models or that others refer to are listed, with the
// values upstream gives.
var libraries = []library{
	{name: "mbed-bootloader", params: []Param{
		{Name: "application-start-address"},
		{Name: "application-jump-address"},
		{Name: "max-application-size", Value: "DEFAULT_MAX_APPLICATION_SIZE"},
		{Name: "max-copy-retries", Value: "1", MacroName: "MAX_COPY_RETRIES"},
		{Name: "max-boot-retries", Value: "3", MacroName: "MAX_BOOT_RETRIES"},
		{Name: "nonstandard-entrypoint", MacroName: "MBED_BOOTLOADER_NONSTANDARD_ENTRYPOINT"},
		{Name: "show-serial-output", Value: "1", MacroName: "SHOW_SERIAL_OUTPUT"},
		{Name: "show-swo-output", Value: "0", MacroName: "SHOW_SWO_OUTPUT"},
		{Name: "use-kvstore-rot", Value: "1", MacroName: "ARM_BOOTLOADER_USE_KVSTORE_ROT"},
		{Name: "default-max-application-size", Value: "(MBED_ROM_START + MBED_ROM_SIZE - MBED_CONF_MBED_BOOTLOADER_APPLICATION_START_ADDRESS)", MacroName: "DEFAULT_MAX_APPLICATION_SIZE"},
		{Name: "bootloader-size", Value: "(32*1024)", MacroName: "MBED_BOOTLOADER_SIZE"},
		{Name: "startup-delay", Value: "0"},
	}},
	{name: "update-client", params: []Param{
		{Name: "application-details", Value: "0"},
		{Name: "bootloader-details", Value: "0"},
		{Name: "storage-address", Value: "0"},
		{Name: "storage-size", Value: "0"},
		{Name: "storage-locations", Value: "1"},
		{Name: "storage-page", Value: "512"},
		{Name: "firmware-header-version", Value: "0"},
	}},
}

func isLibrary(ns string) bool {
	for _, l := range libraries {
		if l.name == ns {
			return true
		}
	}
	return false
}

// libraryParams lists a library's parameters, sorted, for errors.
func libraryParams(ns string) []string {
	var out []string
	for _, l := range libraries {
		if l.name == ns {
			for _, p := range l.params {
				out = append(out, p.Name)
			}
		}
	}
	sort.Strings(out)
	return out
}
