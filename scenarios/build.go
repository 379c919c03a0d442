package scenarios

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"fmt"
	"strconv"
	"time"

	"github.com/bootsim/bootsim/firmware"
	"github.com/bootsim/bootsim/hardened"
	"github.com/bootsim/bootsim/mbedos"
	"github.com/bootsim/bootsim/sim"
	"github.com/bootsim/bootsim/sim/cloud"
	"github.com/bootsim/bootsim/storage"
	"github.com/bootsim/bootsim/updateclient"
)

// Implementation names in program descriptors.
const (
	implClassic = "classic"
	implApp     = "app"
)

// images are the images a scenario builds, by firmware name, and the cache
// of checks over unchanged pages that every machine running them shares
// (the forks of a sweep hash and compare the same images).
type images struct {
	bootloader *sim.Image
	selector   *sim.Image // the chain profile's boot selector
	// vendor is the key the hardened profile's bootloader verifies with.
	vendor *ecdsa.PublicKey
	app    map[string]*sim.Image
	cache  *storage.StampCache
}

// buildImages builds the images of the profile's own stages and one image
// per firmware. The bytes depend on the scenario's seed only.
func (l *Loaded) buildImages() (*images, error) {
	out := &images{app: map[string]*sim.Image{}, cache: storage.NewStampCache()}
	if err := l.prof.buildImages(l, out); err != nil {
		return nil, err
	}
	for _, f := range l.Firmware {
		if out.app[f.Name] != nil {
			continue // one of the profile's own stages
		}
		img, err := l.buildApp(l.appDescriptor(f), f)
		if err != nil {
			return nil, err
		}
		out.app[f.Name] = img
	}
	return out, nil
}

// appDescriptor is the descriptor of an application firmware, with the
// parameters every profile gives it.
func (l *Loaded) appDescriptor(f *Firmware) *sim.Descriptor {
	d := &sim.Descriptor{Stage: sim.StageApplication, Impl: implApp, Name: f.Name, Version: f.Version,
		Behaviour: f.Behaviour, Size: uint64(f.Size)}
	if f.After != 0 {
		d.Params = append(d.Params, [2]string{"after", f.After.String()})
	}
	if f.Watchdog != 0 {
		d.Params = append(d.Params, [2]string{"watchdog", f.Watchdog.String()})
	}
	if p := f.Platform; p != nil {
		if p.CrashCapture != nil {
			d.Params = append(d.Params, [2]string{mbedos.ParamCrashCapture, strconv.FormatBool(*p.CrashCapture)})
		}
		if p.AutoReboot != nil {
			d.Params = append(d.Params, [2]string{mbedos.ParamAutoReboot, strconv.FormatBool(*p.AutoReboot)})
		}
		if p.RebootMax != nil {
			d.Params = append(d.Params, [2]string{mbedos.ParamRebootMax, strconv.Itoa(*p.RebootMax)})
		}
		if p.ClearsRebootInfo {
			d.Params = append(d.Params, [2]string{mbedos.ParamRebootInfo, "clear"})
		}
	}
	if f.ReadsResetReason {
		d.Params = append(d.Params, [2]string{updateclient.ParamReadsResetReason, "true"})
	}
	if l.Chain != nil {
		chainParams(f, d)
	}
	return d
}

// buildApp builds an application's image: a user's binary as it is, or a
// generated image of the descriptor's size.
func (l *Loaded) buildApp(d *sim.Descriptor, f *Firmware) (*sim.Image, error) {
	if f.data != nil {
		return &sim.Image{Desc: d, Bytes: f.data}, nil
	}
	b, err := sim.BuildImage(d, l.Seed)
	if err != nil {
		return nil, fmt.Errorf("firmware %s: %v", f.Name, err)
	}
	return &sim.Image{Desc: d, Bytes: b}, nil
}

// newMachine builds a powered-off machine for the scenario, with the
// profile's programs registered and the images known; storage is blank, or
// restored from a snapshot. The application runs the update client against
// svc.
func (l *Loaded) newMachine(imgs *images, seed uint64, from *storage.Snapshot, client *updateclient.Config, svc *cloud.Service) (*sim.Machine, error) {
	return l.prof.newMachine(l, imgs, seed, from, client, svc)
}

// addImages makes a machine know every firmware image of the scenario.
func (l *Loaded) addImages(m *sim.Machine, imgs *images) {
	for _, f := range l.Firmware {
		img := imgs.app[f.Name]
		if f.data != nil {
			m.AddRawImage(img)
		} else {
			m.AddImage(img)
		}
	}
}

// candidateKey is the key candidate headers are written with: the device
// key of the provisioned ROT, or of the ROT the device would have had when
// none is provisioned (a device whose ROT was lost after the download).
func (l *Loaded) candidateKey() ([]byte, error) {
	rot := l.ROT
	if rot == nil {
		rot = seededROT(l.Seed)
	}
	return firmware.DeviceKey(rot, l.Boot.BackwardCompatibleKey)
}

// programFactory writes the factory state the profile lays out.
func (l *Loaded) programFactory(m *sim.Machine, imgs *images) error {
	return l.prof.programFactory(l, m, imgs)
}

// programClassicFactory writes the classic factory state: bootloader, SOTP
// with the ROT, the active image with its header, candidates with theirs.
func (l *Loaded) programClassicFactory(m *sim.Machine, imgs *images) error {
	var err error
	m.Factory(func() {
		internal := m.Internal()
		internal.Load(0, imgs.bootloader.Bytes)
		if l.ROT != nil {
			if err = l.Layout.ProvisionROT(internal, l.ROT); err != nil {
				return
			}
		}
		if l.Factory.Active != "" {
			img := imgs.app[l.Factory.Active]
			h := internalHeader(l.Firmware.Get(l.Factory.Active), img)
			internal.Load(uint64(l.Layout.ApplicationDetails), h.Encode())
			internal.Load(uint64(l.Layout.ApplicationStart), img.Bytes)
		}
		for i, name := range l.Factory.Slots {
			if name == "" {
				continue
			}
			if err = l.loadCandidate(m, imgs, i, name); err != nil {
				return
			}
		}
	})
	return err
}

func internalHeader(f *Firmware, img *sim.Image) *firmware.InternalHeader {
	return &firmware.InternalHeader{FirmwareVersion: f.Version, FirmwareSize: uint64(len(img.Bytes)), FirmwareHash: sha256.Sum256(img.Bytes)}
}

// loadCandidate writes a candidate into slot i as the update client leaves
// it: the header (internal with a CRC on internal flash, external with the
// device HMAC elsewhere), then the firmware, each padded to the program unit.
func (l *Loaded) loadCandidate(m *sim.Machine, imgs *images, i int, name string) error {
	dev := m.Storage().Device(l.Layout.Storage)
	img := imgs.app[name]
	hdr, err := l.candidateHeaderFor(img, l.Firmware.Get(name).Version, l.candidateKey)
	if err != nil {
		return err
	}
	data, err := l.offChipBytes(img)
	if err != nil {
		return err
	}
	u := dev.ProgramSize()
	dev.Load(l.Layout.Slots(l.Board)[i].Start, storage.PadToUnit(hdr, u))
	dev.Load(l.Layout.SlotBody(l.Board, i, u), storage.PadToUnit(data, u))
	return nil
}

// Budget of the no-brick recovery check: a power cycle must bring a vendor
// application up within this many boots and this much virtual time.
const (
	recoveryBoots = 10
	recoveryTime  = 10 * time.Minute
)

// newService returns the update service the device talks to.
func (l *Loaded) newService() *cloud.Service {
	link := cloud.Link{Bandwidth: l.Device.Network.Bandwidth, Latency: l.Device.Network.Latency.D()}
	if link.Bandwidth == 0 {
		link.Bandwidth = defaultBandwidth
	}
	if link.Latency == 0 {
		link.Latency = defaultLatency
	}
	svc := cloud.New(link)
	svc.SetSources(cloudSources(nil))
	return svc
}

// deviceID is the device's endpoint name.
const deviceID = "bootsim-device-1"

// clientConfig is what the device's update client is provisioned with.
func (l *Loaded) clientConfig(v *vendor) *updateclient.Config {
	vid := firmware.VendorID(l.vendorDomain())
	return &updateclient.Config{
		DeviceID:              deviceID,
		Generation:            l.generation(),
		VendorID:              vid,
		ClassID:               firmware.ClassID(vid, l.modelName()),
		Certificate:           v.cert,
		PublicKey:             &v.key.PublicKey,
		Layout:                l.Layout,
		BackwardCompatibleKey: l.Boot.BackwardCompatibleKey,
		Resume:                l.Device.Client == ClientFOTA,
		Chain:                 l.Chain,
		Hardened:              l.hardenedAreasIf(),
		Encrypt:               l.encrypts(),
	}
}

// hardenedAreasIf returns the hardened profile's SOTP areas, or nil for
// another profile.
func (l *Loaded) hardenedAreasIf() *hardened.Areas {
	if l.Hardened == nil {
		return nil
	}
	return l.hardenedAreas()
}

// sign appends the signature trailer to an image: the vendor's, or for a
// firmware the vendor did not build the attacker's (an attacker signs too,
// with the only key it has).
func (l *Loaded) sign(img *sim.Image, f *Firmware, vendor *ecdsa.PrivateKey) error {
	key := vendor
	if f.Attacker {
		key = seededKey(l.Seed, "attacker")
	}
	signed, err := firmware.Sign(img.Bytes, f.Version, key)
	if err != nil {
		return fmt.Errorf("firmware %s: %v", f.Name, err)
	}
	img.Bytes = signed
	return nil
}

// UserBinary is a firmware a scenario takes from a file, as bootsim treats
// it: its true size and SHA-256 (what its headers and manifests carry), run
// as a healthy application whose code is not executed.
type UserBinary struct {
	Firmware, File string
	Size           int
	SHA256         [32]byte
}

// UserBinaries lists the scenario's firmware taken from files, in order.
func (l *Loaded) UserBinaries() []UserBinary {
	var out []UserBinary
	for _, f := range l.Firmware {
		if f.data != nil {
			out = append(out, UserBinary{Firmware: f.Name, File: f.File, Size: len(f.data), SHA256: sha256.Sum256(f.data)})
		}
	}
	return out
}
