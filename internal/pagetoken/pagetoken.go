// Package pagetoken encodes and decodes the opaque page tokens returned by
// List RPCs.
//
// A token is base64url (no padding) of an HMAC-SHA256 tag followed by a
// small versioned JSON object. The tag's key is derived from the master key
// with HKDF, so every replica of a deployment accepts every other's tokens,
// and a client can neither forge a position nor alter one bit of a token
// unnoticed. FilterHash binds a token to the filter (and ordering, page
// scope...) it was issued for, so it cannot be replayed against a different
// query. Even so, a token is a resume position inside the caller's
// already-authorised result set, never an authorisation input.
//
// Every bad token fails the same way (ErrInvalid, and one public message,
// InvalidDescription), so answers reveal nothing about why it was refused.
package pagetoken

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrInvalid is wrapped by every Decode error; map it to InvalidArgument on
// page_token with InvalidDescription.
var ErrInvalid = errors.New("invalid page token")

// InvalidDescription is the one description of a bad page_token, whatever
// is wrong with it.
const InvalidDescription = "is not a page token from a previous call with the same parameters"

// MaxTokenLength bounds the encoded token accepted by Decode so hostile input
// costs little to reject.
const MaxTokenLength = 2048

// currentVersion 2: signed (version 1 tokens were unsigned and are refused).
const currentVersion = 2

// tagSize is the length of the HMAC-SHA256 tag leading every token.
const tagSize = sha256.Size

// hkdfInfo separates the page-token key from every other use of the master
// key.
const hkdfInfo = "agencyplane page tokens v2"

// Token is the decoded content of a page token.
type Token struct {
	// After is the sort key of the last item on the previous page.
	After string
	// FilterHash identifies the query the token belongs to; see Hash.
	FilterHash string
}

// wire is the serialized form; short field names keep tokens small.
type wire struct {
	V int    `json:"v"`
	A string `json:"a"`
	F string `json:"f,omitempty"`
}

var enc = base64.RawURLEncoding.Strict()

// Codec signs and checks page tokens. It is safe for concurrent use.
type Codec struct {
	// keys: the first signs; every one verifies (master-key rotation).
	keys [][]byte
}

// NewCodec derives the token keys from the deployment's master keys (newest
// first, as the vault takes them): tokens are signed with the first and
// accepted under any, so a master-key rotation does not break paging in
// flight.
func NewCodec(masterKeys ...[]byte) (*Codec, error) {
	if len(masterKeys) == 0 {
		return nil, errors.New("pagetoken: at least one master key is required")
	}
	c := &Codec{}
	for _, mk := range masterKeys {
		if len(mk) == 0 {
			return nil, errors.New("pagetoken: empty master key")
		}
		k, err := hkdf.Key(sha256.New, mk, nil, hkdfInfo, sha256.Size)
		if err != nil {
			return nil, fmt.Errorf("pagetoken: derive key: %w", err)
		}
		c.keys = append(c.keys, k)
	}
	return c, nil
}

func tag(key, payload []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(payload)
	return m.Sum(nil)
}

// Encode returns the opaque token string for t. A Token with an empty After
// encodes fine but will not Decode; return "" (no next page) instead. After
// should be valid UTF-8: invalid bytes are replaced by U+FFFD, as in any JSON.
func (c *Codec) Encode(t Token) string {
	var b bytes.Buffer
	je := json.NewEncoder(&b)
	je.SetEscapeHTML(false) // tokens never reach HTML; escaping only bloats them
	if err := je.Encode(wire{V: currentVersion, A: t.After, F: t.FilterHash}); err != nil {
		// Encoding a struct of strings and an int cannot fail.
		panic(fmt.Sprintf("pagetoken: marshal: %v", err))
	}
	payload := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
	return enc.EncodeToString(append(tag(c.keys[0], payload), payload...))
}

// Decode checks s's signature, parses it and checks that it was issued for
// filterHash. Every failure wraps ErrInvalid, including the empty string:
// callers treat an empty page_token as "first page" before calling Decode.
func (c *Codec) Decode(s string, filterHash string) (Token, error) {
	if s == "" {
		return Token{}, fmt.Errorf("%w: empty", ErrInvalid)
	}
	if len(s) > MaxTokenLength {
		return Token{}, fmt.Errorf("%w: too long", ErrInvalid)
	}
	raw, err := enc.DecodeString(s)
	if err != nil {
		return Token{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if len(raw) <= tagSize {
		return Token{}, fmt.Errorf("%w: too short", ErrInvalid)
	}
	sig, payload := raw[:tagSize], raw[tagSize:]
	if !c.verify(sig, payload) {
		return Token{}, fmt.Errorf("%w: bad signature", ErrInvalid)
	}
	// Signed by us: what follows only guards against our own bugs.
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	var w wire
	if err := dec.Decode(&w); err != nil {
		return Token{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if dec.More() {
		return Token{}, fmt.Errorf("%w: trailing data", ErrInvalid)
	}
	if w.V != currentVersion {
		return Token{}, fmt.Errorf("%w: unsupported version %d", ErrInvalid, w.V)
	}
	if w.A == "" {
		return Token{}, fmt.Errorf("%w: missing position", ErrInvalid)
	}
	if w.F != filterHash {
		return Token{}, fmt.Errorf("%w: token was issued for a different filter or order", ErrInvalid)
	}
	return Token{After: w.A, FilterHash: w.F}, nil
}

func (c *Codec) verify(sig, payload []byte) bool {
	ok := false
	for _, k := range c.keys {
		// Every key is tried, so the time taken does not say which matched.
		ok = hmac.Equal(sig, tag(k, payload)) || ok
	}
	return ok
}

// Hash returns a short (16 hex chars) SHA-256 digest of parts, for use as
// Token.FilterHash. Parts are length-prefixed so ("ab", "c") and ("a", "bc")
// differ. Include everything that changes the result set or its order, e.g.
// the canonical filter string, order_by and parent.
func Hash(parts ...string) string {
	h := sha256.New()
	var n [8]byte
	for _, p := range parts {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}
