package scenarios

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/bootsim/bootsim/chain"
	"github.com/bootsim/bootsim/sim"
	"github.com/bootsim/bootsim/storage"
)

// What a region holds at the end of a run (RegionState.Holds).
const (
	HoldsErased   = "erased"   // every byte is 0xFF
	HoldsFirmware = "firmware" // a whole image, where the profile puts one
	HoldsPartial  = "partial"  // an image's first bytes, then something else
	HoldsData     = "data"     // anything else (a header, key storage, a record)
)

// partialMinimum is the fewest bytes of an image a region must start with
// to be said to hold part of it: less is a coincidence of headers.
const partialMinimum = 256

// RegionState is what one region of the layout holds at the end of a run,
// and what the run did to it. The HTML report's flash map shows it, and
// the JSON run report carries it.
type RegionState struct {
	Name   string `json:"name"`
	Device string `json:"device"`
	Start  uint64 `json:"start"`
	Size   uint64 `json:"size"`
	// Holds is HoldsErased, HoldsFirmware, HoldsPartial or HoldsData.
	Holds string `json:"holds"`
	// Firmware names the image a region holds all of, or the first Matching
	// bytes of.
	Firmware string `json:"firmware,omitempty"`
	Matching uint64 `json:"matching,omitempty"`
	// InUse counts the region's bytes that are not erased; SHA256 is the
	// hash of the whole region, as a region: {sha256: ...} expectation
	// takes it.
	InUse  uint64 `json:"in_use"`
	SHA256 string `json:"sha256"`
	// Erases counts the erase operations that started in the region in the
	// whole run (before and after a cut), Programmed the bytes programmed.
	Erases     int    `json:"erases"`
	Programmed uint64 `json:"programmed"`
}

// Text says in a few words what the region holds.
func (s RegionState) Text() string {
	switch s.Holds {
	case HoldsFirmware:
		return s.Firmware
	case HoldsPartial:
		return fmt.Sprintf("the first %d bytes of %s", s.Matching, s.Firmware)
	case HoldsData:
		return fmt.Sprintf("data (%d of %d bytes not erased)", s.InUse, s.Size)
	}
	return s.Holds
}

// regionStates reads every region of the device as the run leaves it.
func (r *runner) regionStates() []RegionState {
	st := r.m.Storage()
	imgs := r.imagesByName()
	var out []RegionState
	index := map[string]int{}
	for _, reg := range st.Regions() {
		dev := st.Device(reg.Device)
		b := make([]byte, reg.Size)
		dev.Peek(reg.Start, b)
		s := RegionState{Name: reg.Name, Device: reg.Device, Start: reg.Start, Size: reg.Size}
		for _, c := range b {
			if c != 0xFF {
				s.InUse++
			}
		}
		sum := sha256.Sum256(b)
		s.SHA256 = hex.EncodeToString(sum[:])
		switch {
		case s.InUse == 0:
			s.Holds = HoldsErased
		default:
			s.Holds = HoldsData
			at := r.imageAt(reg, dev) - reg.Start
			for _, img := range imgs {
				n := commonPrefix(b[at:], img.Bytes)
				if n == uint64(len(img.Bytes)) {
					s.Holds, s.Firmware, s.Matching = HoldsFirmware, img.Desc.Name, 0
					break
				}
				if n >= partialMinimum && n > s.Matching {
					s.Holds, s.Firmware, s.Matching = HoldsPartial, img.Desc.Name, n
				}
			}
		}
		index[reg.Name] = len(out)
		out = append(out, s)
	}
	for _, op := range st.Journal() {
		k, ok := index[op.Region]
		if !ok {
			continue
		}
		switch op.Kind {
		case storage.OpErase:
			out[k].Erases++
		case storage.OpProgram:
			out[k].Programmed += op.Len
		}
	}
	return out
}

// commonPrefix is how many first bytes a and b share.
func commonPrefix(a, b []byte) uint64 {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return uint64(i)
		}
	}
	return uint64(n)
}

// imagesByName is every image of the run, the profile's own stages first,
// then the firmware in the order the scenario lists it.
func (r *runner) imagesByName() []*sim.Image {
	var out []*sim.Image
	for _, img := range []*sim.Image{r.imgs.selector, r.imgs.bootloader} {
		if img != nil {
			out = append(out, img)
		}
	}
	for _, f := range r.l.Firmware {
		if img := r.imgs.app[f.Name]; img != nil && img != r.imgs.bootloader && img != r.imgs.selector {
			out = append(out, img)
		}
	}
	return out
}

// imageAt is where the image a region holds starts: after the profile's
// header where it puts one, else at the region's start.
func (r *runner) imageAt(reg storage.Region, dev storage.Device) uint64 {
	if loc, ok := r.l.prof.(imageLocator); ok {
		if a, ok := loc.imageStart(r.l, reg.Name, dev); ok {
			return a
		}
		return reg.Start
	}
	if r.l.Chain != nil && (strings.HasPrefix(reg.Name, "app-") || strings.HasPrefix(reg.Name, "bootloader-")) {
		return reg.Start + chain.HeaderSpace
	}
	var i int
	if _, err := fmt.Sscanf(reg.Name, "slot-%d", &i); err == nil && r.l.Layout != nil {
		return r.l.Layout.SlotBody(r.l.Board, i, dev.ProgramSize())
	}
	return reg.Start
}
