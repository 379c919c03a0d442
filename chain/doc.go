// Package chain holds what the stages of the multi-stage chain profile
// share: the flash layout (boot selector, boot record, bootloader slots,
// application slots), the header in front of every stored image, and the
// boot record that says which stored versions are ready, confirmed or
// failed, with the store that keeps it power-fail safe.
//
// The boot selector (package bootsel), the chain bootloader
// (bootloader.Chain) and the application's confirmation (updateclient)
// read and write the record through a Store; nothing else does.
package chain
