// Package pagetoken encodes and decodes the opaque page tokens returned by
// List RPCs.
//
// A token is base64url (no padding) of a small versioned JSON object. Tokens
// are opaque to clients but NOT authenticated: a client can forge any After
// value. Servers must therefore use After only as a resume position inside
// the caller's already-authorised result set, never as an authorisation
// input. FilterHash binds a token to the filter (and ordering, page scope...)
// it was issued for, so it cannot be replayed against a different query.
package pagetoken

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrInvalid is wrapped by every Decode error; map it to InvalidArgument.
var ErrInvalid = errors.New("invalid page token")

// MaxTokenLength bounds the encoded token accepted by Decode so hostile input
// costs little to reject.
const MaxTokenLength = 2048

const currentVersion = 1

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

// Encode returns the opaque token string for t. A Token with an empty After
// encodes fine but will not Decode; return "" (no next page) instead. After
// should be valid UTF-8: invalid bytes are replaced by U+FFFD, as in any JSON.
func Encode(t Token) string {
	var b bytes.Buffer
	je := json.NewEncoder(&b)
	je.SetEscapeHTML(false) // tokens never reach HTML; escaping only bloats them
	if err := je.Encode(wire{V: currentVersion, A: t.After, F: t.FilterHash}); err != nil {
		// Encoding a struct of strings and an int cannot fail.
		panic(fmt.Sprintf("pagetoken: marshal: %v", err))
	}
	return enc.EncodeToString(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
}

// Decode parses s and checks that it was issued for filterHash. Every failure
// wraps ErrInvalid, including the empty string: callers treat an empty
// page_token as "first page" before calling Decode.
func Decode(s string, filterHash string) (Token, error) {
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
	dec := json.NewDecoder(bytes.NewReader(raw))
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
