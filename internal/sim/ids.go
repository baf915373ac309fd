package sim

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sync"
	"time"
)

// newUUID returns a random (version 4) UUID, the form of every Instantly id.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (it aborts the process instead)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// newSecret mimics the look of Instantly v2 keys, base64("<uuid>:<14 random characters>"),
// 68 characters long, so clients that size or log keys see realistic values.
func newSecret(keyID string) string {
	tail := make([]byte, 0, 14)
	var b [1]byte
	for len(tail) < cap(tail) {
		_, _ = rand.Read(b[:])
		if b[0] < 248 { // 248 = 4*62: rejecting the rest keeps every character equally likely
			tail = append(tail, alnum[int(b[0])%len(alnum)])
		}
	}
	return base64.StdEncoding.EncodeToString([]byte(keyID + ":" + string(tail)))
}

// timestamp formats like JavaScript's Date.toISOString, as Instantly's timestamps are.
func timestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// idGen issues time-ordered (version 7) UUIDs that are strictly increasing for one Server,
// even when its clock stands still or steps back. Lists are ordered and paginated by id, as a
// database would with "WHERE id > $starting_after ORDER BY id": a cursor stays valid after its
// item is deleted, and an unknown cursor is simply compared.
type idGen struct {
	mu sync.Mutex
	ms uint64 // 48-bit Unix milliseconds of the last id
	hi uint64 // 12 bits (rand_a)
	lo uint64 // 62 bits (rand_b)
}

func (g *idGen) next(now time.Time) string {
	ms := uint64(max(now.UnixMilli(), 0)) & (1<<48 - 1)
	g.mu.Lock()
	if ms > g.ms {
		g.ms = ms
		g.hi = randUint64() & 0x7ff // leave headroom for ids in the same millisecond
		g.lo = randUint64() & (1<<62 - 1)
	} else {
		g.lo += 1 + randUint64()%(1<<24) // random steps keep ids unguessable
		if g.lo >= 1<<62 {
			g.lo -= 1 << 62
			if g.hi++; g.hi >= 1<<12 {
				g.hi = 0
				g.ms++
			}
		}
	}
	ms, hi, lo := g.ms, g.hi, g.lo
	g.mu.Unlock()

	var b [16]byte
	binary.BigEndian.PutUint64(b[8:], lo)
	b[8] = 0x80 | b[8]&0x3f
	b[6] = 0x70 | byte(hi>>8)
	b[7] = byte(hi)
	for i := range 6 {
		b[i] = byte(ms >> (40 - 8*i))
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func randUint64() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:])
}

// newSec returns a change-owner secret: 32 random hex characters.
func newSec() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
