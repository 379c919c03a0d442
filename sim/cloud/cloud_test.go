package cloud

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func newTestService() *Service {
	s := New(Link{Bandwidth: 1000, Latency: 50 * time.Millisecond})
	s.SetSources([]Source{{Name: "lwm2m", Kind: "lwm2m"}, {Name: "http", Kind: "http"}, {Name: "mirror", Kind: "http", Cost: 800, Busy: 1}})
	return s
}

// TestCosts: the source manager's ranking inputs (reference/mbed-stack.md
// §4.5): LwM2M serves a manifest for 0 only when one was pushed, HTTP for
// 700, and what a source cannot serve costs 0xFFFFFFFF.
func TestCosts(t *testing.T) {
	l, h := Source{Kind: "lwm2m"}, Source{Kind: "http"}
	require.Equal(t, uint32(CostLwM2MCached), Cost(l, "manifest", true))
	require.Equal(t, uint32(Unavailable), Cost(l, "manifest", false))
	require.Equal(t, uint32(Unavailable), Cost(l, "firmware", true))
	require.Equal(t, uint32(CostHTTP), Cost(h, "firmware", false))
	require.Equal(t, uint32(CostHTTP), Cost(h, "manifest", false))
	require.Equal(t, uint32(800), Cost(Source{Kind: "http", Cost: 800}, "firmware", false))
	require.Equal(t, uint32(Unavailable), Cost(Source{Kind: "lwm2m", Cost: 5}, "firmware", true), "a cost override does not make a source able to serve")
}

func TestFetchRangesAndFaults(t *testing.T) {
	s := newTestService()
	payload := []byte("0123456789abcdef")
	s.StartCampaign(&Campaign{Manifest: []byte("m"), PayloadURI: "u", Payload: payload, Target: 2})
	b, err := s.Fetch("d", "http", "u", 4, 6)
	require.NoError(t, err)
	require.Equal(t, "456789", string(b))
	b, err = s.Fetch("d", "http", "u", 12, 10)
	require.NoError(t, err)
	require.Equal(t, "cdef", string(b), "a range past the end is cut")
	b, err = s.Fetch("d", "http", "u", 16, 10)
	require.NoError(t, err)
	require.Empty(t, b)
	require.Equal(t, int64(10), s.Device("d").BytesServed)

	s.CorruptAt(Corruption{Offset: 5, Mask: 0x01})
	b, _ = s.Fetch("d", "http", "u", 0, 8)
	require.Equal(t, "01234467", string(b), "byte 5 flipped in transit")
	b, _ = s.Fetch("d", "http", "u", 0, 8)
	require.Equal(t, "01234567", string(b), "only once")

	_, err = s.Fetch("d", "mirror", "u", 0, 8)
	require.ErrorIs(t, err, ErrBusy)
	_, err = s.Fetch("d", "mirror", "u", 0, 8)
	require.NoError(t, err, "busy only as often as configured")
	_, err = s.Fetch("d", "http", "nope", 0, 8)
	require.ErrorIs(t, err, ErrNotFound)
	s.SetSources([]Source{{Name: "http", Kind: "http", Fails: true}})
	_, err = s.Fetch("d", "http", "u", 0, 8)
	require.ErrorIs(t, err, ErrSourceFailed)
	s.SetLinkUp(false)
	_, err = s.Fetch("d", "http", "u", 0, 8)
	require.ErrorIs(t, err, ErrLinkDown)

	s = newTestService()
	s.StartCampaign(&Campaign{PayloadURI: "u", Payload: payload})
	s.ServeMismatch([]byte("XXXXXXXXXXXXXXXX"))
	b, _ = s.Fetch("d", "http", "u", 0, 4)
	require.Equal(t, "XXXX", string(b))
}

// TestNotifications: registered devices below the target get the manifest
// pushed once per campaign; one that registers again still below it is
// notified again; reaching the target marks it updated.
func TestNotifications(t *testing.T) {
	s := newTestService()
	var pushed [][]byte
	require.NoError(t, s.Register("d", 1))
	s.Subscribe("d", func(m []byte) bool { pushed = append(pushed, m); return true })
	s.StartCampaign(&Campaign{Manifest: []byte("v2"), PayloadURI: "u", Target: 2})
	require.Equal(t, [][]byte{[]byte("v2")}, pushed)
	require.Equal(t, 1, s.Device("d").Notifications)

	require.NoError(t, s.Register("d", 1))
	m, ok := s.Pending("d")
	require.True(t, ok)
	require.Equal(t, "v2", string(m))
	require.Equal(t, 2, s.Device("d").Notifications)

	require.NoError(t, s.Register("d", 2))
	_, ok = s.Pending("d")
	require.False(t, ok)
	v := s.Device("d")
	require.True(t, v.Updated)
	require.Equal(t, 100, v.Result)

	s.Report("d", 4, 0)
	require.Equal(t, 4, s.Device("d").State)
	require.Equal(t, 100, s.Device("d").Result, "a report without a result keeps the last one")
	s.SetLinkUp(false)
	require.ErrorIs(t, s.Register("d", 2), ErrLinkDown)
	s.Report("d", 1, 504)
	require.Equal(t, 100, s.Device("d").Result, "reports do not cross a link that is down")
}

func TestTransferTime(t *testing.T) {
	s := newTestService()
	require.Equal(t, 50*time.Millisecond+2*time.Second, s.TransferTime(0, 2000))
	s.StallUntil(10 * time.Second)
	require.Equal(t, 10*time.Second-time.Second+50*time.Millisecond, s.TransferTime(time.Second, 0))
	require.Equal(t, 50*time.Millisecond, s.TransferTime(11*time.Second, 0))
}

// TestCloneIsIndependent: a clone starts with everything the service knows
// (campaign, link, sources, device views, pending corruptions and busy
// answers) and from then on neither sees the other's changes; subscriptions
// stay with the original, whose pushes go to a live device.
func TestCloneIsIndependent(t *testing.T) {
	s := newTestService()
	pushed := 0
	s.Subscribe("d", func([]byte) bool { pushed++; return true })
	require.NoError(t, s.Register("d", 1))
	s.CorruptAt(Corruption{Offset: 1, Mask: 0x01})
	s.StartCampaign(&Campaign{Manifest: []byte("m"), PayloadURI: "u", Payload: []byte("abcd"), Target: 2})
	require.Equal(t, 1, pushed)
	before := s.Device("d")

	c := s.Clone()
	require.Equal(t, before, c.Device("d"))
	require.Same(t, s.Campaign(), c.Campaign())
	require.Equal(t, s.Link(), c.Link())
	require.Equal(t, s.Sources(), c.Sources())

	// Changes to the clone stay in the clone.
	require.NoError(t, c.Register("d", 2))
	c.Report("d", 3, 0)
	b, err := c.Fetch("d", "http", "u", 0, 4)
	require.NoError(t, err)
	require.Equal(t, "accd", string(b), "the pending corruption carried over")
	_, err = c.Fetch("d", "mirror", "u", 0, 4)
	require.ErrorIs(t, err, ErrBusy, "the busy answer carried over")
	c.SetLinkUp(false)
	c.Publish("old", []byte("x"))
	c.StartCampaign(&Campaign{Manifest: []byte("m2"), PayloadURI: "u2", Payload: []byte("z"), Target: 3})
	require.Equal(t, 1, pushed, "the clone has no subscription to push to")
	require.Equal(t, before, s.Device("d"))
	require.True(t, s.Link().Up)
	b, err = s.Fetch("d", "http", "u", 0, 4)
	require.NoError(t, err)
	require.Equal(t, "accd", string(b), "the original's corruption is still pending")
	_, err = s.Fetch("d", "mirror", "u", 0, 4)
	require.ErrorIs(t, err, ErrBusy)
	_, err = s.Fetch("d", "http", "old", 0, 1)
	require.ErrorIs(t, err, ErrNotFound)
	require.Equal(t, "u", s.Campaign().PayloadURI)

	// And the original's changes do not reach the clone.
	s.Report("d", 5, 0)
	require.Equal(t, 3, c.Device("d").State)
}

// TestAskedCounts: every method but Clone and Asked counts as asking the
// service; a clone starts from zero.
func TestAskedCounts(t *testing.T) {
	s := newTestService()
	base := s.Asked()
	_ = s.Link()
	_ = s.TransferTime(0, 10)
	_, _ = s.Fetch("d", "http", "nothing", 0, 1)
	require.Equal(t, base+3, s.Asked())
	c := s.Clone()
	require.Zero(t, c.Asked())
	_ = c.Device("d")
	require.Equal(t, 1, c.Asked())
	require.Equal(t, base+3, s.Asked())
}
