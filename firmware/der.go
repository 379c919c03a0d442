package firmware

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// Errors from manifest decoding and verification.
var (
	// ErrMalformed: the bytes are not a manifest of the expected version (bad
	// DER, a missing or misplaced field, trailing data). The wrapping error
	// names the field.
	ErrMalformed = errors.New("firmware: malformed manifest")
	// ErrManifestHash: a v1 manifest's ResourceSignature.hash is not the
	// SHA-256 of its DER Resource.
	ErrManifestHash = errors.New("firmware: manifest hash mismatch")
	// ErrUnsigned: the manifest carries no signature.
	ErrUnsigned = errors.New("firmware: manifest is not signed")
	// ErrUnknownSigner: no signature of a v1 manifest references a
	// certificate the verifier has (by SHA-256 fingerprint).
	ErrUnknownSigner = errors.New("firmware: no signature by a known certificate")
	// ErrSignature: a signature does not verify.
	ErrSignature = errors.New("firmware: manifest signature does not verify")
	// ErrPayload: a payload does not match the manifest's size or digest.
	ErrPayload = errors.New("firmware: payload does not match the manifest")
)

// derReader reads DER with cryptobyte and remembers the first failure with
// the path of the field being read, so that callers get one error that
// names what is wrong ("v1: Manifest.timestamp: …").
type derReader struct {
	s    cryptobyte.String
	path string
	err  *error
}

func newDERReader(b []byte, path string, err *error) *derReader {
	return &derReader{s: cryptobyte.String(b), path: path, err: err}
}

func (r *derReader) failed() bool { return *r.err != nil }

func (r *derReader) fail(field, what string) {
	if *r.err == nil {
		*r.err = fmt.Errorf("%w: %s.%s: %s", ErrMalformed, r.path, field, what)
	}
}

// seq reads a SEQUENCE and returns a reader over its contents.
func (r *derReader) seq(field string) *derReader {
	var child cryptobyte.String
	if !r.failed() && !r.s.ReadASN1(&child, asn1.SEQUENCE) {
		r.fail(field, "want a SEQUENCE")
	}
	return &derReader{s: child, path: r.path + "." + field, err: r.err}
}

// element reads a whole element with the given tag, header included.
func (r *derReader) element(field string, tag asn1.Tag) []byte {
	var el cryptobyte.String
	if !r.failed() && !r.s.ReadASN1Element(&el, tag) {
		r.fail(field, "missing or of the wrong type")
	}
	return el
}

func (r *derReader) peek(tag asn1.Tag) bool { return !r.failed() && r.s.PeekASN1Tag(tag) }

func (r *derReader) octets(field string) []byte {
	var out []byte
	if !r.failed() && !r.s.ReadASN1Bytes(&out, asn1.OCTET_STRING) {
		r.fail(field, "want an OCTET STRING")
	}
	if out == nil {
		out = []byte{}
	}
	return out
}

func (r *derReader) utf8(field string) string {
	var out []byte
	if !r.failed() && !r.s.ReadASN1Bytes(&out, asn1.UTF8String) {
		r.fail(field, "want a UTF8String")
	}
	return string(out)
}

func (r *derReader) uint(field string) uint64 {
	var v uint64
	if !r.failed() && !r.s.ReadASN1Integer(&v) {
		r.fail(field, "want a non-negative INTEGER that fits 64 bits")
	}
	return v
}

func (r *derReader) int(field string) int64 {
	var v int64
	if !r.failed() && !r.s.ReadASN1Integer(&v) {
		r.fail(field, "want an INTEGER that fits 64 bits")
	}
	return v
}

func (r *derReader) enum(field string) int {
	var v int
	if !r.failed() && !r.s.ReadASN1Enum(&v) {
		r.fail(field, "want an ENUMERATED")
	}
	return v
}

func (r *derReader) boolean(field string) bool {
	var v bool
	if !r.failed() && !r.s.ReadASN1Boolean(&v) {
		r.fail(field, "want a DER BOOLEAN")
	}
	return v
}

// end fails unless every byte was consumed.
func (r *derReader) end() {
	if !r.failed() && !r.s.Empty() {
		r.fail("end", fmt.Sprintf("%d unexpected bytes", len(r.s)))
	}
}

// addUTF8 adds a UTF8String.
func addUTF8(b *cryptobyte.Builder, s string) {
	b.AddASN1(asn1.UTF8String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(s)) })
}
