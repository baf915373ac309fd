// Package vault seals client credentials (Instantly.ai API keys) with
// AES-256-GCM under a rotating set of master keys.
//
// A sealed blob is the ASCII string
//
//	"v1." + keyID + "." + base64url(nonce || ciphertext || tag)
//
// where keyID names the master key that sealed it, so blobs sealed before a
// rotation still open as long as the old key stays in the keyring. Callers
// pass the owning workspace's resource name as AAD so a blob copied to
// another workspace fails to open.
package vault

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the length in bytes of a master key (AES-256).
const KeySize = 32

const (
	version   = "v1"
	idLen     = 8 // hex chars of SHA-256(key)
	nonceSize = 12
	tagSize   = 16
)

// Sentinel errors returned (wrapped) by Open. Messages never contain key
// material or plaintext.
var (
	// ErrUnknownKey means the blob names a key id that is not in the keyring,
	// typically because a retired key was removed too early.
	ErrUnknownKey = errors.New("vault: sealed with unknown key")
	// ErrMalformed means the blob is not a well-formed v1 sealed value.
	ErrMalformed = errors.New("vault: malformed sealed value")
	// ErrDecrypt means authentication failed: wrong AAD, tampering, or a
	// key-id collision.
	ErrDecrypt = errors.New("vault: decryption failed")
)

// b64 is strict so each blob has exactly one encoding; a lenient decoder
// would accept altered trailing bits as the same ciphertext.
var b64 = base64.RawURLEncoding.Strict()

// KeyID returns the identifier of a master key: the first 8 hex characters of
// its SHA-256. It is safe to log.
func KeyID(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:])[:idLen]
}

// GenerateKey returns a new random master key.
func GenerateKey() ([]byte, error) {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("vault: generating key: %w", err)
	}
	return k, nil
}

// Fingerprint returns "sha256:" plus the first 16 hex characters of the
// SHA-256 of secret; it identifies a credential to users without revealing it.
func Fingerprint(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return "sha256:" + hex.EncodeToString(sum[:])[:16]
}

// Keyring holds the master keys. The first key is current and seals; all keys
// open. A Keyring is immutable and safe for concurrent use.
type Keyring struct {
	ids   []string
	aeads map[string]cipher.AEAD
}

// NewKeyring builds a keyring whose first key is current. It rejects an empty
// list, keys that are not KeySize bytes, and duplicate keys (or ids).
func NewKeyring(keys ...[]byte) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("vault: no master keys")
	}
	kr := &Keyring{aeads: make(map[string]cipher.AEAD, len(keys))}
	for i, k := range keys {
		if len(k) != KeySize {
			return nil, fmt.Errorf("vault: master key %d is %d bytes, want %d", i+1, len(k), KeySize)
		}
		id := KeyID(k)
		if _, dup := kr.aeads[id]; dup {
			return nil, fmt.Errorf("vault: master key %d duplicates key id %s", i+1, id)
		}
		block, err := aes.NewCipher(k) // copies the key schedule; k is not retained
		if err != nil {
			return nil, fmt.Errorf("vault: master key %d: %w", i+1, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("vault: master key %d: %w", i+1, err)
		}
		kr.ids = append(kr.ids, id)
		kr.aeads[id] = aead
	}
	return kr, nil
}

// CurrentKeyID is the id of the key new seals use.
func (kr *Keyring) CurrentKeyID() string { return kr.ids[0] }

// KeyIDs returns the ids of all keys, current first.
func (kr *Keyring) KeyIDs() []string { return append([]string(nil), kr.ids...) }

// additionalData binds the header into the tag so the version and key id
// cannot be rewritten independently of the ciphertext.
func additionalData(header string, aad []byte) []byte {
	ad := make([]byte, 0, len(header)+len(aad))
	return append(append(ad, header...), aad...)
}

// Seal encrypts plaintext with the current key and a random nonce. aad must
// be supplied unchanged to Open; use the workspace's resource name.
func (kr *Keyring) Seal(plaintext, aad []byte) ([]byte, error) {
	id := kr.ids[0]
	header := version + "." + id + "."
	nonce := make([]byte, nonceSize, nonceSize+len(plaintext)+tagSize)
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("vault: generating nonce: %w", err)
	}
	payload := kr.aeads[id].Seal(nonce, nonce, plaintext, additionalData(header, aad))
	out := make([]byte, len(header)+b64.EncodedLen(len(payload)))
	copy(out, header)
	b64.Encode(out[len(header):], payload)
	return out, nil
}

// parse splits a sealed blob into its header, key id and raw payload.
func parse(sealed []byte) (header, id string, payload []byte, err error) {
	rest, ok := bytes.CutPrefix(sealed, []byte(version+"."))
	if !ok {
		return "", "", nil, fmt.Errorf("%w: missing %q prefix", ErrMalformed, version+".")
	}
	idb, enc, ok := bytes.Cut(rest, []byte("."))
	if !ok || len(idb) != idLen || !isLowerHex(idb) {
		return "", "", nil, fmt.Errorf("%w: bad key id", ErrMalformed)
	}
	payload = make([]byte, b64.DecodedLen(len(enc)))
	n, err := b64.Decode(payload, enc)
	if err != nil {
		// The base64 error only carries an offset, but keep it out anyway so
		// no future change can leak ciphertext fragments into logs.
		return "", "", nil, fmt.Errorf("%w: bad base64 payload", ErrMalformed)
	}
	payload = payload[:n]
	if len(payload) < nonceSize+tagSize {
		return "", "", nil, fmt.Errorf("%w: payload too short", ErrMalformed)
	}
	id = string(idb)
	return version + "." + id + ".", id, payload, nil
}

func isLowerHex(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Open decrypts a blob produced by Seal with any key in the keyring. Errors
// wrap ErrMalformed, ErrUnknownKey or ErrDecrypt.
func (kr *Keyring) Open(sealed, aad []byte) ([]byte, error) {
	header, id, payload, err := parse(sealed)
	if err != nil {
		return nil, err
	}
	aead, ok := kr.aeads[id]
	if !ok {
		return nil, fmt.Errorf("%w: key id %s", ErrUnknownKey, id)
	}
	pt, err := aead.Open(nil, payload[:nonceSize], payload[nonceSize:], additionalData(header, aad))
	if err != nil {
		return nil, fmt.Errorf("%w: key id %s", ErrDecrypt, id)
	}
	return pt, nil
}

// NeedsReseal reports whether sealed is a well-formed blob under a key other
// than the current one, i.e. a rotation job should Open and Seal it again.
// Malformed blobs report false: resealing cannot fix them.
func (kr *Keyring) NeedsReseal(sealed []byte) bool {
	_, id, _, err := parse(sealed)
	return err == nil && id != kr.ids[0]
}

// ParseKeys parses master keys from configuration (AGENCY_MASTER_KEY or
// --master-key-file): standard base64 keys separated by commas and/or
// newlines, surrounding whitespace trimmed, blank lines and lines starting
// with '#' ignored. Keys are returned in order, so the first is current.
// Errors identify entries by position only, never by content.
func ParseKeys(s string) ([][]byte, error) {
	var keys [][]byte
	n := 0
	for line := range strings.Lines(s) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		for entry := range strings.SplitSeq(line, ",") {
			n++
			entry = strings.TrimSpace(entry)
			if entry == "" {
				return nil, fmt.Errorf("vault: master key entry %d is empty", n)
			}
			k, err := base64.StdEncoding.DecodeString(entry)
			if err != nil {
				return nil, fmt.Errorf("vault: master key entry %d is not valid standard base64", n)
			}
			if len(k) != KeySize {
				return nil, fmt.Errorf("vault: master key entry %d decodes to %d bytes, want %d", n, len(k), KeySize)
			}
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("vault: no master keys found")
	}
	return keys, nil
}
