package chain

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/bootsim/bootsim/sim"
)

// HeaderSpace is what a slot keeps for its header before the image: 256
// bytes, a whole number of program units on every board.
const HeaderSpace = 256

// HeaderSize is the encoded header's length.
const HeaderSize = 64

const headerMagic = 0x314e4843 // "CHN1"

// Stage codes in a header.
const (
	codeBootloader  = 1
	codeApplication = 2
)

// Header is what precedes every stored image: the stage it is for, its
// version, size and SHA-256, and a CRC of the header itself.
//
//	0  magic u32 "CHN1"
//	4  stage u8 (1 bootloader, 2 application), 3 bytes zero
//	8  version u64
//	16 size u32, 4 bytes zero
//	24 sha256 [32]
//	56 crc32 (IEEE) of bytes 0..55, u32
//	60 4 bytes zero
type Header struct {
	Stage   sim.Stage
	Version uint64
	Size    uint32
	Hash    [32]byte
}

// Errors of DecodeHeader.
var (
	ErrNoHeader  = errors.New("chain: no header (blank or another format)")
	ErrHeaderCRC = errors.New("chain: header CRC mismatch")
	ErrBadHeader = errors.New("chain: malformed header")
)

// HeaderFor returns the header of an image.
func HeaderFor(stage sim.Stage, version uint64, image []byte) *Header {
	return &Header{Stage: stage, Version: version, Size: uint32(len(image)), Hash: sha256.Sum256(image)}
}

// Encode returns the header's bytes.
func (h *Header) Encode() []byte {
	b := make([]byte, HeaderSize)
	binary.LittleEndian.PutUint32(b[0:], headerMagic)
	switch h.Stage {
	case sim.StageBootloader:
		b[4] = codeBootloader
	case sim.StageApplication:
		b[4] = codeApplication
	default:
		panic(fmt.Sprintf("chain: a header for stage %q", h.Stage))
	}
	binary.LittleEndian.PutUint64(b[8:], h.Version)
	binary.LittleEndian.PutUint32(b[16:], h.Size)
	copy(b[24:56], h.Hash[:])
	binary.LittleEndian.PutUint32(b[56:], crc32.ChecksumIEEE(b[:56]))
	return b
}

// DecodeHeader reads a header from the start of b.
func DecodeHeader(b []byte) (*Header, error) {
	if len(b) < HeaderSize {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrBadHeader, len(b), HeaderSize)
	}
	if binary.LittleEndian.Uint32(b[0:]) != headerMagic {
		return nil, ErrNoHeader
	}
	if got, want := crc32.ChecksumIEEE(b[:56]), binary.LittleEndian.Uint32(b[56:]); got != want {
		return nil, fmt.Errorf("%w: stored 0x%08x, computed 0x%08x", ErrHeaderCRC, want, got)
	}
	h := &Header{Version: binary.LittleEndian.Uint64(b[8:]), Size: binary.LittleEndian.Uint32(b[16:])}
	switch b[4] {
	case codeBootloader:
		h.Stage = sim.StageBootloader
	case codeApplication:
		h.Stage = sim.StageApplication
	default:
		return nil, fmt.Errorf("%w: stage code %d", ErrBadHeader, b[4])
	}
	copy(h.Hash[:], b[24:56])
	return h, nil
}
