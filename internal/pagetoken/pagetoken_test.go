package pagetoken

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// testCodec signs with a fixed master key (tests only).
func testCodec(tb testing.TB, keys ...[]byte) *Codec {
	tb.Helper()
	if len(keys) == 0 {
		keys = [][]byte{bytes.Repeat([]byte{7}, 32)}
	}
	c, err := NewCodec(keys...)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// raw is an unsigned token: base64url of s (what version 1 issued).
func raw(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// signed is a token of payload s correctly signed by c: it reaches the
// checks after the signature, which only our own bugs could otherwise hit.
func signed(c *Codec, s string) string {
	return base64.RawURLEncoding.EncodeToString(append(tag(c.keys[0], []byte(s)), s...))
}

func TestRoundTrip(t *testing.T) {
	c := testCodec(t)
	tests := []Token{
		{After: "workspaces/acme", FilterHash: Hash("env=prod")},
		{After: "x", FilterHash: ""},
		{After: "name with spaces/ü/\"quotes\"", FilterHash: "abc"},
		{After: strings.Repeat("z", 500), FilterHash: Hash()},
	}
	for _, tok := range tests {
		t.Run(tok.After[:min(len(tok.After), 20)], func(t *testing.T) {
			s := c.Encode(tok)
			if strings.ContainsAny(s, "+/=") {
				t.Errorf("token %q is not unpadded base64url", s)
			}
			if len(tok.After) >= 8 && strings.Contains(s, tok.After) {
				t.Errorf("token %q shows After in clear text", s)
			}
			got, err := c.Decode(s, tok.FilterHash)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if got != tok {
				t.Fatalf("Decode = %+v, want %+v", got, tok)
			}
		})
	}
}

func TestEncodeIsDeterministic(t *testing.T) {
	c := testCodec(t)
	tok := Token{After: "a", FilterHash: "b"}
	if c.Encode(tok) != c.Encode(tok) {
		t.Fatal("Encode is not deterministic")
	}
	if c.Encode(tok) == c.Encode(Token{After: "a", FilterHash: "c"}) {
		t.Fatal("FilterHash not encoded")
	}
}

func TestDecodeErrors(t *testing.T) {
	c := testCodec(t)
	good := c.Encode(Token{After: "w/1", FilterHash: "f1"})
	urlForm := c.Encode(Token{After: "??>??~", FilterHash: "f1"})
	stdAlphabet := strings.NewReplacer("-", "+", "_", "/").Replace(urlForm)
	if stdAlphabet == urlForm {
		t.Fatal("test bug: token has no URL-specific characters")
	}
	if _, err := c.Decode(urlForm, "f1"); err != nil {
		t.Fatalf("test bug: %v", err)
	}
	tests := []struct {
		name   string
		token  string
		filter string
	}{
		{"empty", "", ""},
		{"bad base64", "!!!!", "f1"},
		{"padded", good + "=", "f1"},
		{"std alphabet", stdAlphabet, "f1"},
		{"unsigned v1", raw(`{"v":1,"a":"x","f":"f1"}`), "f1"},
		{"unsigned v2", raw(`{"v":2,"a":"x","f":"f1"}`), "f1"},
		{"signature only", base64.RawURLEncoding.EncodeToString(tag(c.keys[0], nil)), ""},
		{"shorter than a signature", raw("short"), ""},
		{"signature of another payload", base64.RawURLEncoding.EncodeToString(append(tag(c.keys[0], []byte("other")), `{"v":2,"a":"x","f":"f1"}`...)), "f1"},
		{"not json", signed(c, "hello"), "f1"},
		{"json array", signed(c, `[1,"a"]`), "f1"},
		{"json null", signed(c, `null`), ""},
		{"trailing data", signed(c, `{"v":2,"a":"x","f":"f1"}{}`), "f1"},
		{"trailing garbage", signed(c, `{"v":2,"a":"x","f":"f1"} x`), "f1"},
		{"unknown field", signed(c, `{"v":2,"a":"x","f":"f1","admin":true}`), "f1"},
		{"missing version", signed(c, `{"a":"x","f":"f1"}`), "f1"},
		{"version 1", signed(c, `{"v":1,"a":"x","f":"f1"}`), "f1"},
		{"version 3", signed(c, `{"v":3,"a":"x","f":"f1"}`), "f1"},
		{"version string", signed(c, `{"v":"2","a":"x","f":"f1"}`), "f1"},
		{"empty after", signed(c, `{"v":2,"a":"","f":"f1"}`), "f1"},
		{"missing after", signed(c, `{"v":2,"f":"f1"}`), "f1"},
		{"filter mismatch", good, "f2"},
		{"filter dropped", good, ""},
		{"filter added", c.Encode(Token{After: "x"}), "f1"},
		{"too long", c.Encode(Token{After: strings.Repeat("a", MaxTokenLength), FilterHash: "f1"}), "f1"},
		{"truncated", good[:len(good)-3], "f1"},
		{"another deployment's", testCodec(t, bytes.Repeat([]byte{8}, 32)).Encode(Token{After: "w/1", FilterHash: "f1"}), "f1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := c.Decode(tt.token, tt.filter)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Decode(%q) = %+v, %v; want ErrInvalid", tt.token, tok, err)
			}
			if tok != (Token{}) {
				t.Errorf("Decode returned non-zero token %+v with error", tok)
			}
		})
	}
	// Sanity: the good token does decode with its own filter.
	if _, err := c.Decode(good, "f1"); err != nil {
		t.Fatalf("good token: %v", err)
	}
	if _, err := c.Decode(signed(c, `{"v":2,"a":"x","f":"f1"}`), "f1"); err != nil {
		t.Fatalf("test bug: signed() does not sign: %v", err)
	}
}

// TestBitFlipsRefused: flipping any single bit of a valid token, in its
// bytes or in its text, gives a token that is refused.
func TestBitFlipsRefused(t *testing.T) {
	c := testCodec(t)
	for _, tok := range []Token{
		{After: "workspaces/acme-0001", FilterHash: Hash("workspaces", "client=a")},
		{After: "01HZX3", FilterHash: Hash("results", "op", "false")},
		{After: "x"},
	} {
		good := c.Encode(tok)
		rawTok, err := base64.RawURLEncoding.DecodeString(good)
		if err != nil {
			t.Fatal(err)
		}
		for i := range len(rawTok) * 8 {
			b := bytes.Clone(rawTok)
			b[i/8] ^= 1 << (i % 8)
			if got, err := c.Decode(base64.RawURLEncoding.EncodeToString(b), tok.FilterHash); !errors.Is(err, ErrInvalid) {
				t.Fatalf("byte %d bit %d flipped: accepted as %+v", i/8, i%8, got)
			}
		}
		for i := range len(good) {
			for bit := range 7 {
				s := []byte(good)
				s[i] ^= 1 << bit
				if got, err := c.Decode(string(s), tok.FilterHash); !errors.Is(err, ErrInvalid) {
					t.Fatalf("char %d bit %d flipped (%q): accepted as %+v", i, bit, s, got)
				}
			}
		}
	}
}

// TestKeys: a token is accepted only under the master keys that derived
// its key; the newest signs, older ones still verify (rotation).
func TestKeys(t *testing.T) {
	oldKey, newKey, other := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32), bytes.Repeat([]byte{3}, 32)
	tok := Token{After: "w/9", FilterHash: "f"}
	before := testCodec(t, oldKey)
	after := testCodec(t, newKey, oldKey)
	issuedBefore := before.Encode(tok)
	if got, err := after.Decode(issuedBefore, "f"); err != nil || got != tok {
		t.Fatalf("a token from before the rotation: %+v %v", got, err)
	}
	issuedAfter := after.Encode(tok)
	if issuedAfter == issuedBefore {
		t.Fatal("the rotated codec signs with the old key")
	}
	if _, err := before.Decode(issuedAfter, "f"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a token of a newer key accepted by the old codec: %v", err)
	}
	if _, err := testCodec(t, other).Decode(issuedAfter, "f"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("wrong key accepted: %v", err)
	}
	// The key is derived (HKDF), not the master key itself.
	if bytes.Equal(before.keys[0], oldKey) || len(before.keys[0]) != 32 {
		t.Fatal("the token key is not a 32-byte derived key")
	}
	if _, err := NewCodec(); err == nil {
		t.Fatal("NewCodec without keys")
	}
	if _, err := NewCodec([]byte{}); err == nil {
		t.Fatal("NewCodec with an empty key")
	}
}

func TestHash(t *testing.T) {
	tests := []struct {
		name string
		a, b []string
		same bool
	}{
		{"equal", []string{"env=prod", "name"}, []string{"env=prod", "name"}, true},
		{"order matters", []string{"a", "b"}, []string{"b", "a"}, false},
		{"boundaries matter", []string{"ab", "c"}, []string{"a", "bc"}, false},
		{"empty part counts", []string{"a"}, []string{"a", ""}, false},
		{"none vs empty", nil, []string{""}, false},
		{"different", []string{"env=prod"}, []string{"env=dev"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ha, hb := Hash(tt.a...), Hash(tt.b...)
			if (ha == hb) != tt.same {
				t.Fatalf("Hash(%q)=%s Hash(%q)=%s, want same=%v", tt.a, ha, tt.b, hb, tt.same)
			}
			if len(ha) != 16 || strings.Trim(ha, "0123456789abcdef") != "" {
				t.Errorf("Hash = %q, want 16 lowercase hex chars", ha)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	c := testCodec(f)
	f.Add(c.Encode(Token{After: "workspaces/a", FilterHash: "f"}), "f")
	f.Add(c.Encode(Token{After: "x"}), "")
	f.Add("", "")
	f.Add("!!!", "x")
	f.Add(raw(`{"v":1,"a":"x"}`), "")
	f.Add(raw(`{"v":2,"a":"x"}`), "")
	f.Add(raw(`{"v":1,"a":"\ud800"}`), "")
	f.Add(signed(c, `{"v":2,"a":"\ud800"}`), "")
	f.Add(signed(c, `{"v":2,"a":"x","f":"f"}`), "f")
	f.Fuzz(func(t *testing.T, s, filter string) {
		tok, err := c.Decode(s, filter)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Decode error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if tok.After == "" || tok.FilterHash != filter {
			t.Fatalf("Decode accepted %+v for filter %q", tok, filter)
		}
		re := c.Encode(tok)
		if len(re) > MaxTokenLength {
			return // decoding can expand escapes; such tokens were never issued by Encode
		}
		again, err := c.Decode(re, filter)
		if err != nil || again != tok {
			t.Fatalf("re-encode of %+v: %+v, %v", tok, again, err)
		}
	})
}

// TestLongestTokenAccepted: the length bound refuses only what exceeds it;
// a token of exactly MaxTokenLength characters still pages.
func TestLongestTokenAccepted(t *testing.T) {
	c := testCodec(t)
	for n := 1; n < MaxTokenLength; n++ {
		tok := Token{After: strings.Repeat("a", n), FilterHash: "f"}
		s := c.Encode(tok)
		if len(s) < MaxTokenLength {
			continue
		}
		if len(s) > MaxTokenLength {
			t.Fatalf("no After length encodes to exactly %d characters", MaxTokenLength)
		}
		if got, err := c.Decode(s, "f"); err != nil || got != tok {
			t.Fatalf("token of %d characters: %+v, %v", len(s), got, err)
		}
		return
	}
}
