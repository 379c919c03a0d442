package scenarios

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/bootsim/bootsim/chain"
	"github.com/bootsim/bootsim/firmware"
	"github.com/bootsim/bootsim/mbedos"
	"github.com/bootsim/bootsim/sim"
	"github.com/bootsim/bootsim/sim/cloud"
	"github.com/bootsim/bootsim/storage"
	"github.com/bootsim/bootsim/updateclient"
)

// startCampaign builds the campaign's manifest and starts it on the service.
func (r *runner) startCampaign(c *Campaign) error {
	raw, err := r.manifest(c)
	if err != nil {
		return err
	}
	f := r.l.Firmware.Get(c.Firmware)
	target := f.Version
	if c.Manifest == "v3" {
		target, _ = firmware.PackSemver(f.Semver)
	}
	if c.Attack != "" {
		target = math.MaxUint64 // pushed to every device, never "updated"
	}
	served := r.imgs.app[c.Firmware].Bytes
	if c.Payload == PayloadEmpty {
		served = []byte{}
	}
	r.svc.SetSources(cloudSources(c.Sources))
	r.client.Download = c.Authorize.Download.policy()
	r.client.Install = c.Authorize.Install.policy()
	if c.Payload == PayloadMismatch {
		other := make([]byte, len(served))
		rng := rand.New(rand.NewPCG(r.seed, 0x6d69736d61746368))
		for i := range other {
			other[i] = byte(rng.Uint32())
		}
		r.svc.ServeMismatch(other)
	}
	r.campaign, r.campaignAt = c, r.m.Now()
	r.svc.StartCampaign(&cloud.Campaign{Name: c.Firmware, Manifest: raw, PayloadURI: payloadURI(c.Firmware), Payload: served, Target: target})
	return nil
}

// appAction makes the running application do something.
func (r *runner) appAction(a *AppAction) error {
	m := r.m
	if m.State() != sim.StateRunning || m.Stage() != sim.StageApplication {
		return fmt.Errorf("no application is running; the device is %s", r.describe())
	}
	if a.Crash {
		d := m.Image().Desc
		m.After(0, func() { mbedos.Fault(m, mbedos.ConfigFor(m.Board(), d), "HardFault requested by the scenario") })
		return nil
	}
	if a.Confirm {
		img := m.Image()
		m.After(0, func() {
			if err := chain.Confirm(m, r.l.Chain, img.Desc.Version); err != nil {
				m.Printf("confirm failed: %v\r\n", err)
				return
			}
			m.Printf("%s version %d confirmed\r\n", img.Desc.Name, img.Desc.Version)
			m.Mark(chain.MarkConfirmed, fmt.Sprintf("%s version %d", img.Desc.Name, img.Desc.Version))
		})
		return nil
	}
	// A compromised application writes a candidate with a header it can
	// forge: a CRC on internal flash, or an HMAC keyed with the device key
	// it derives from the ROT it reads from SOTP - and reboots.
	img := r.imgs.app[a.Plant]
	f := r.l.Firmware.Get(a.Plant)
	l := r.l
	if l.Chain != nil {
		m.After(0, func() {
			if err := updateclient.PlantChain(m, l.Chain, img.Bytes, f.Version); err != nil {
				m.Printf("plant: %v\r\n", err)
				return
			}
			m.Mark("planted", a.Plant)
			m.SystemReset()
		})
		return nil
	}
	m.After(0, func() {
		dev := m.Storage().Device(l.Layout.Storage)
		slot := l.Layout.Slots(l.Board)[0]
		body := l.Layout.SlotBody(l.Board, 0, dev.ProgramSize())
		hdr, err := l.candidateHeaderFor(img, f.Version,
			func() ([]byte, error) {
				rot, err := l.Layout.ClientROT(m.Internal())
				if err != nil {
					return nil, fmt.Errorf("no ROT: %w", err)
				}
				return firmware.DeviceKey(rot, l.Boot.BackwardCompatibleKey)
			})
		var data []byte
		if err == nil {
			// With the ROT it read, it encrypts as the client would.
			data, err = l.offChipBytes(img)
		}
		if err != nil {
			m.Printf("plant: %v\r\n", err)
			return
		}
		end := body + uint64(len(img.Bytes))
		for at := slot.Start; at < end; {
			n := dev.EraseSize(at)
			_ = dev.Erase(at, n)
			at += n
		}
		u := dev.ProgramSize()
		_ = dev.Program(slot.Start, storage.PadToUnit(hdr, u))
		_ = dev.Program(body, storage.PadToUnit(data, u))
		m.Mark("planted", a.Plant)
		m.SystemReset()
	})
	return nil
}
