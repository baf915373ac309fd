package sim

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
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
