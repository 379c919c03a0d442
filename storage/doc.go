// Package storage models the persistent memories of a simulated board: internal
// NOR flash, external SPI NOR flash and SD cards.
//
// Every device speaks one interface, Device, shaped after Mbed OS's BlockDevice
// and FlashIAP APIs: read, program and erase at byte addresses, with a read
// size, a program size, an erase size that may vary with the address, an erase
// value and a total size. The devices of one board live in a System, which owns
// what they share: the op journal, the virtual clock they advance, the fault
// injector they consult before every mutating op, and the power state.
//
// The physics follow the parts: NOR flash erases to 0xFF by whole sectors and
// programs only 1→0 transitions in program-unit multiples; SD cards write whole
// 512-byte blocks, need no erase and can be removed. Faults (power cuts before
// or after an op, torn programs and erases, bit flips, stuck bits, I/O errors,
// wear-out, card removal) are applied at a chosen op and are reproducible from
// the op's index, the fault mode and a seed.
//
// Device contents live in copy-on-write pages, so a Snapshot of a whole System
// costs a few pointer copies and the snapshots of a sweep share every page they
// have not written.
package storage
