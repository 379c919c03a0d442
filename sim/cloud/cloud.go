// Package cloud is the update service a simulated device talks to: it holds
// campaigns (a signed manifest and a payload per target firmware), notifies
// registered devices, serves manifests and payload fragments over HTTP and
// LwM2M, records what each device reports, and misbehaves on demand (a link
// that drops, stalls or corrupts bytes; a source that fails or is busy).
//
// The service does no timing of its own: the device's update client asks
// TransferTime how long a transfer takes and schedules the delivery on its
// machine, so that a reset or power loss in between loses the transfer as
// it would on hardware.
package cloud

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Errors a request can meet.
var (
	// ErrLinkDown: the device has no connectivity; the request never left.
	ErrLinkDown = errors.New("cloud: link down")
	// ErrNotFound: the service has nothing at that URI (HTTP 404).
	ErrNotFound = errors.New("cloud: not found")
	// ErrSourceFailed: the source answered with an error (HTTP 5xx).
	ErrSourceFailed = errors.New("cloud: source failed")
	// ErrBusy: the source is busy; the request may be retried later.
	ErrBusy = errors.New("cloud: source busy")
)

// Campaign is an update of one firmware: its manifest and the payload the
// manifest's URI names.
type Campaign struct {
	Name       string
	Manifest   []byte
	PayloadURI string
	Payload    []byte
	// Target is the firmware version the campaign installs: a device that
	// registers with a lower version is notified.
	Target uint64
}

// DeviceView is what the service knows of a device.
type DeviceView struct {
	ID         string
	Registered bool
	// Version is the active firmware version the device last reported.
	Version uint64
	// State and Result are the last LwM2M update state and result reported.
	State, Result int
	// Notifications counts the manifests pushed to the device.
	Notifications int
	// BytesServed counts the payload bytes sent to the device.
	BytesServed int64
	// Updated is set once the device reports the campaign's target version.
	Updated bool
}

// Link is the device's connectivity.
type Link struct {
	Up bool
	// Bandwidth in bytes per second and Latency per request.
	Bandwidth uint64
	Latency   time.Duration
}

// Source names the update sources a device can use and how it fails.
type Source struct {
	Name string
	// Kind is "lwm2m" (manifests pushed over the LwM2M connection) or
	// "http" (manifests by URL and payloads, with Range requests).
	Kind string
	// Cost overrides the kind's cost when not zero.
	Cost uint32
	// Fails makes every request to the source fail (ErrSourceFailed).
	Fails bool
	// Busy makes the source answer BUSY this many times first.
	Busy int
}

// Costs the real source manager ranks sources by (reference/mbed-stack.md
// §4.5): lowest wins; Unavailable means the source cannot serve.
const (
	CostLwM2MCached = 0
	CostHTTP        = 700
	Unavailable     = 0xFFFFFFFF
)

// Corruption flips a byte of the payload in transit at an offset, once.
type Corruption struct {
	Offset int64
	Mask   byte
}

// Service is the update service of one simulated device fleet.
type Service struct {
	link      Link
	campaign  *Campaign
	devices   map[string]*DeviceView
	sources   []Source
	busy      map[string]int
	corrupt   []Corruption
	mismatch  []byte // served instead of the campaign's payload, when set
	requests  int
	available map[string][]byte // extra resources by URI (old manifests)
	notify    map[string]func([]byte) bool
	stall     time.Duration // requests sent before this virtual time hang until it
	asked     int           // calls to the service's methods, Clone and Asked aside
	now       func() time.Duration
	downUntil time.Duration // a link drop: down until this time of now
}

// SetClock gives the service the device's clock, which link drops are
// timed by. It is the harness's call, not a request: Asked does not count
// it.
func (s *Service) SetClock(now func() time.Duration) { s.now = now }

// DropLinkUntil takes the link down until virtual time t (by the clock
// SetClock gave): a link drop, which ends by itself. It is the harness's
// call: Asked does not count it.
func (s *Service) DropLinkUntil(t time.Duration) { s.downUntil = t }

// up reports whether the link is up now.
func (s *Service) up() bool {
	return s.link.Up && (s.now == nil || s.now() >= s.downUntil)
}

// Asked counts the calls made to the service's methods (Clone and Asked
// aside) since it was created or cloned: a run that never asked the service
// anything did not depend on its state.
func (s *Service) Asked() int { return s.asked }

// New returns a service with the link up.
func New(link Link) *Service {
	link.Up = true
	return &Service{link: link, devices: map[string]*DeviceView{}, busy: map[string]int{}, available: map[string][]byte{},
		notify: map[string]func([]byte) bool{}}
}

// Link returns the link's state (down during a link drop).
func (s *Service) Link() Link {
	s.asked++
	l := s.link
	l.Up = s.up()
	return l
}

// SetLinkUp brings the link up or down.
func (s *Service) SetLinkUp(up bool) {
	s.asked++
	s.link.Up = up
}

// SetBandwidth changes the link's bandwidth (bytes per second).
func (s *Service) SetBandwidth(bps uint64) {
	s.asked++
	s.link.Bandwidth = bps
}

// SetLatency changes the link's latency per request.
func (s *Service) SetLatency(d time.Duration) {
	s.asked++
	s.link.Latency = d
}

// CorruptAt flips bits of the payload byte at an offset the next time it is
// served.
func (s *Service) CorruptAt(c Corruption) {
	s.asked++
	s.corrupt = append(s.corrupt, c)
}

// ServeMismatch makes the service serve payload instead of the campaign's
// (a payload that does not match its manifest).
func (s *Service) ServeMismatch(payload []byte) {
	s.asked++
	s.mismatch = payload
}

// SetSources sets the sources devices use, in registration order.
func (s *Service) SetSources(src []Source) {
	s.asked++

	s.sources = slices.Clone(src)
	for _, x := range src {
		s.busy[x.Name] = x.Busy
	}
}

// Sources returns the configured sources.
func (s *Service) Sources() []Source {
	s.asked++
	return slices.Clone(s.sources)
}

// Publish makes a resource available at a URI (an old manifest a replay
// attack serves, say).
func (s *Service) Publish(uri string, data []byte) {
	s.asked++
	s.available[uri] = data
}

// Subscribe registers the function that pushes a manifest to a device over
// its LwM2M connection. It reports whether the device took the push (a
// device that was reset since it subscribed has no connection).
func (s *Service) Subscribe(id string, push func(manifest []byte) bool) {
	s.asked++
	s.notify[id] = push
}

// StartCampaign starts a campaign and pushes its manifest to the registered
// devices below its target version.
func (s *Service) StartCampaign(c *Campaign) {
	s.asked++

	s.campaign = c
	s.available[c.PayloadURI] = c.Payload
	ids := make([]string, 0, len(s.devices))
	for id := range s.devices {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		d := s.devices[id]
		push := s.notify[id]
		if push == nil || !d.Registered || d.Version >= c.Target || !s.up() {
			continue
		}
		if push(c.Manifest) {
			d.Notifications++
		}
	}
}

// Campaign returns the current campaign, or nil.
func (s *Service) Campaign() *Campaign {
	s.asked++
	return s.campaign
}

// Device returns the service's view of a device (a zero view if unknown).
func (s *Service) Device(id string) DeviceView {
	s.asked++

	if d := s.devices[id]; d != nil {
		return *d
	}
	return DeviceView{ID: id}
}

func (s *Service) device(id string) *DeviceView {
	d := s.devices[id]
	if d == nil {
		d = &DeviceView{ID: id}
		s.devices[id] = d
	}
	return d
}

// Register records a device's registration and the version it runs. It
// fails if the link is down.
func (s *Service) Register(id string, version uint64) error {
	s.asked++

	if !s.up() {
		return ErrLinkDown
	}
	d := s.device(id)
	d.Registered = true
	d.Version = version
	if s.campaign != nil && version >= s.campaign.Target {
		d.Updated = true
		d.Result = 100 // ARM_UC_UPDATE_RESULT_UPDATE_SUCCEEDED
		d.State = 1
	}
	return nil
}

// Pending returns the manifest to push to a registered device, if a
// campaign targets a version above the device's. Each call that returns one
// counts as a notification.
func (s *Service) Pending(id string) ([]byte, bool) {
	s.asked++

	d := s.devices[id]
	if d == nil || !d.Registered || s.campaign == nil || d.Version >= s.campaign.Target || !s.up() {
		return nil, false
	}
	d.Notifications++
	return s.campaign.Manifest, true
}

// Report records an update state and result the device reports.
func (s *Service) Report(id string, state, result int) {
	s.asked++

	if !s.up() {
		return
	}
	d := s.device(id)
	d.State = state
	if result != 0 {
		d.Result = result
	}
}

// StallUntil makes requests sent before a virtual time hang until then.
func (s *Service) StallUntil(t time.Duration) {
	s.asked++
	s.stall = t
}

// TransferTime is how long a request carrying n bytes, sent at virtual time
// now, takes on the link.
func (s *Service) TransferTime(now time.Duration, n int) time.Duration {
	s.asked++

	t := s.link.Latency
	if now < s.stall {
		t += s.stall - now
	}
	if s.link.Bandwidth > 0 {
		t += time.Duration(uint64(n) * uint64(time.Second) / s.link.Bandwidth)
	}
	return t
}

// Cost returns what a source charges for a kind of request ("manifest" or
// "firmware"), given whether the device holds a pushed manifest.
func Cost(src Source, request string, manifestCached bool) uint32 {
	var c uint32 = Unavailable
	switch {
	case src.Kind == "lwm2m" && request == "manifest" && manifestCached:
		c = CostLwM2MCached
	case src.Kind == "http":
		c = CostHTTP
	}
	if c != Unavailable && src.Cost != 0 {
		c = src.Cost
	}
	return c
}

// Fetch serves [offset, offset+n) of the resource at uri through a source,
// as an HTTP Range request does. It returns fewer bytes at the end of the
// resource.
func (s *Service) Fetch(id, source, uri string, offset int64, n int) ([]byte, error) {
	s.asked++

	s.requests++
	if !s.up() {
		return nil, ErrLinkDown
	}
	src, ok := s.source(source)
	if !ok {
		return nil, fmt.Errorf("%w: no source %q", ErrSourceFailed, source)
	}
	if src.Fails {
		return nil, fmt.Errorf("%w: %s answers 500", ErrSourceFailed, source)
	}
	if s.busy[source] > 0 {
		s.busy[source]--
		return nil, ErrBusy
	}
	res, ok := s.available[uri]
	payload := s.campaign != nil && uri == s.campaign.PayloadURI
	if payload && s.mismatch != nil {
		res = s.mismatch
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, uri)
	}
	if offset >= int64(len(res)) {
		return []byte{}, nil
	}
	end := min(int64(len(res)), offset+int64(n))
	out := slices.Clone(res[offset:end])
	if payload {
		kept := s.corrupt[:0]
		for _, c := range s.corrupt {
			if c.Offset >= offset && c.Offset < end {
				out[c.Offset-offset] ^= c.Mask
				continue
			}
			kept = append(kept, c)
		}
		s.corrupt = kept
		s.device(id).BytesServed += end - offset
	}
	return out, nil
}

func (s *Service) source(name string) (Source, bool) {
	for _, x := range s.sources {
		if x.Name == name {
			return x, true
		}
	}
	return Source{}, false
}

// Requests counts the requests served (or refused) so far.
func (s *Service) Requests() int {
	s.asked++
	return s.requests
}

// Clone returns a copy of the service as it is now, for a run forked from
// this moment: the campaign, the link, the sources and what the service knows
// of each device carry over; the subscriptions do not, since they push to a
// device's live connection and a forked device has none until it connects
// again. Campaigns, payloads and published resources are shared: the service
// never writes them once given.
func (s *Service) Clone() *Service {
	c := *s
	c.asked = 0
	c.devices = make(map[string]*DeviceView, len(s.devices))
	for id, d := range s.devices {
		dv := *d
		c.devices[id] = &dv
	}
	c.sources = slices.Clone(s.sources)
	c.busy = maps.Clone(s.busy)
	c.corrupt = slices.Clone(s.corrupt)
	c.available = maps.Clone(s.available)
	c.notify = map[string]func([]byte) bool{}
	return &c
}

// StopCampaign withdraws the current campaign: devices are no longer
// notified of it. Its payload stays where it was published.
func (s *Service) StopCampaign() {
	s.asked++
	s.campaign = nil
}
