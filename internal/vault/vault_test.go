package vault

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func mustKeyring(t *testing.T, keys ...[]byte) *Keyring {
	t.Helper()
	kr, err := NewKeyring(keys...)
	if err != nil {
		t.Fatalf("NewKeyring: %v", err)
	}
	return kr
}

const ws = "workspaces/acme"

func TestKeyID(t *testing.T) {
	k := key(1)
	sum := sha256.Sum256(k)
	if got, want := KeyID(k), hex.EncodeToString(sum[:4]); got != want {
		t.Fatalf("KeyID = %q, want %q", got, want)
	}
	if len(KeyID(k)) != 8 {
		t.Fatalf("KeyID length %d", len(KeyID(k)))
	}
}

func TestNewKeyring(t *testing.T) {
	tests := []struct {
		name    string
		keys    [][]byte
		wantErr string
	}{
		{"one", [][]byte{key(1)}, ""},
		{"two", [][]byte{key(1), key(2)}, ""},
		{"none", nil, "no master keys"},
		{"short", [][]byte{make([]byte, 16)}, "master key 1 is 16 bytes"},
		{"long", [][]byte{key(1), make([]byte, 33)}, "master key 2 is 33 bytes"},
		{"empty", [][]byte{{}}, "is 0 bytes"},
		{"duplicate", [][]byte{key(1), key(2), key(1)}, "master key 3 duplicates"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kr, err := NewKeyring(tt.keys...)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("NewKeyring: %v", err)
				}
				if kr.CurrentKeyID() != KeyID(tt.keys[0]) {
					t.Errorf("CurrentKeyID = %q, want first key's id", kr.CurrentKeyID())
				}
				if ids := kr.KeyIDs(); len(ids) != len(tt.keys) || ids[0] != KeyID(tt.keys[0]) {
					t.Errorf("KeyIDs = %v", ids)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("NewKeyring error = %v, want containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestNewKeyringDoesNotAliasInput(t *testing.T) {
	k := key(7)
	kr := mustKeyring(t, k)
	sealed, err := kr.Seal([]byte("secret"), []byte(ws))
	if err != nil {
		t.Fatal(err)
	}
	for i := range k {
		k[i] = 0
	}
	if _, err := kr.Open(sealed, []byte(ws)); err != nil {
		t.Fatalf("zeroing the caller's key slice broke the keyring: %v", err)
	}
}

func TestSealOpenRoundTrip(t *testing.T) {
	kr := mustKeyring(t, key(1))
	tests := []struct {
		name      string
		plaintext []byte
		aad       []byte
	}{
		{"api key", []byte("inst_live_0123456789abcdef"), []byte(ws)},
		{"empty plaintext", []byte{}, []byte(ws)},
		{"nil aad", []byte("x"), nil},
		{"binary", []byte{0, 1, 2, 255, '.', 0}, []byte("workspaces/a.b")},
		{"large", bytes.Repeat([]byte("k"), 1<<16), []byte(ws)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sealed, err := kr.Seal(tt.plaintext, tt.aad)
			if err != nil {
				t.Fatalf("Seal: %v", err)
			}
			prefix := "v1." + kr.CurrentKeyID() + "."
			if !bytes.HasPrefix(sealed, []byte(prefix)) {
				t.Fatalf("sealed %q lacks prefix %q", sealed, prefix)
			}
			raw, err := base64.RawURLEncoding.DecodeString(string(sealed[len(prefix):]))
			if err != nil {
				t.Fatalf("payload is not raw base64url: %v", err)
			}
			if want := 12 + len(tt.plaintext) + 16; len(raw) != want {
				t.Errorf("payload is %d bytes, want nonce+ct+tag = %d", len(raw), want)
			}
			got, err := kr.Open(sealed, tt.aad)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !bytes.Equal(got, tt.plaintext) {
				t.Fatalf("Open = %q, want %q", got, tt.plaintext)
			}
		})
	}
}

func TestSealIsRandomized(t *testing.T) {
	kr := mustKeyring(t, key(1))
	a, _ := kr.Seal([]byte("same"), []byte(ws))
	b, _ := kr.Seal([]byte("same"), []byte(ws))
	if bytes.Equal(a, b) {
		t.Fatal("two seals of the same plaintext are identical; nonce is not random")
	}
}

func TestSealedNeverContainsPlaintext(t *testing.T) {
	kr := mustKeyring(t, key(1))
	secrets := []string{
		"inst_live_0123456789abcdef",
		"AAAAAAAAAAAAAAAAAAAAAAAA",
		strings.Repeat("secret", 20),
	}
	for _, s := range secrets {
		sealed, err := kr.Seal([]byte(s), []byte(ws))
		if err != nil {
			t.Fatal(err)
		}
		for _, needle := range []string{s, base64.RawURLEncoding.EncodeToString([]byte(s)), base64.StdEncoding.EncodeToString([]byte(s))} {
			if bytes.Contains(sealed, []byte(needle)) {
				t.Errorf("sealed output %q contains plaintext form %q", sealed, needle)
			}
		}
	}
}

func TestOpenWrongAAD(t *testing.T) {
	kr := mustKeyring(t, key(1))
	sealed, _ := kr.Seal([]byte("secret"), []byte("workspaces/acme"))
	for _, aad := range [][]byte{[]byte("workspaces/globex"), []byte("workspaces/acm"), nil, []byte("workspaces/acme ")} {
		_, err := kr.Open(sealed, aad)
		if !errors.Is(err, ErrDecrypt) {
			t.Errorf("Open with aad %q: err = %v, want ErrDecrypt", aad, err)
		}
	}
}

func TestOpenTampered(t *testing.T) {
	kr := mustKeyring(t, key(1))
	sealed, _ := kr.Seal([]byte("inst_live_secret"), []byte(ws))
	prefix := len("v1.") + 8 + 1
	raw, _ := base64.RawURLEncoding.DecodeString(string(sealed[prefix:]))
	for i := range raw {
		for _, bit := range []byte{0x01, 0x80} {
			mod := bytes.Clone(raw)
			mod[i] ^= bit
			blob := append([]byte(string(sealed[:prefix])), base64.RawURLEncoding.EncodeToString(mod)...)
			if _, err := kr.Open(blob, []byte(ws)); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("flipping bit %#x of payload byte %d: err = %v, want ErrDecrypt", bit, i, err)
			}
		}
	}
	// Tampering with the encoded text itself must also fail, one way or another.
	for i := prefix; i < len(sealed); i++ {
		mod := bytes.Clone(sealed)
		if mod[i] == 'A' {
			mod[i] = 'B'
		} else {
			mod[i] = 'A'
		}
		if _, err := kr.Open(mod, []byte(ws)); err == nil {
			t.Fatalf("altered character %d still opens", i)
		}
	}
}

func TestOpenTruncated(t *testing.T) {
	kr := mustKeyring(t, key(1))
	sealed, _ := kr.Seal([]byte("inst_live_secret"), []byte(ws))
	for n := range len(sealed) {
		if _, err := kr.Open(sealed[:n], []byte(ws)); err == nil {
			t.Fatalf("truncated to %d bytes still opens", n)
		}
	}
}

func TestRotation(t *testing.T) {
	a, b := key(0xA), key(0xB)
	old := mustKeyring(t, a)
	sealedA, err := old.Seal([]byte("secret-a"), []byte(ws))
	if err != nil {
		t.Fatal(err)
	}
	rotated := mustKeyring(t, b, a)
	if rotated.CurrentKeyID() != KeyID(b) {
		t.Fatalf("CurrentKeyID = %s, want %s", rotated.CurrentKeyID(), KeyID(b))
	}
	got, err := rotated.Open(sealedA, []byte(ws))
	if err != nil || string(got) != "secret-a" {
		t.Fatalf("rotated keyring Open(old seal) = %q, %v", got, err)
	}
	if !rotated.NeedsReseal(sealedA) {
		t.Error("NeedsReseal(old seal) = false, want true")
	}
	if old.NeedsReseal(sealedA) {
		t.Error("NeedsReseal under its own current key = true")
	}
	sealedB, err := rotated.Seal(got, []byte(ws))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(sealedB, []byte("v1."+KeyID(b)+".")) {
		t.Errorf("new seal %q does not use key B", sealedB)
	}
	if rotated.NeedsReseal(sealedB) {
		t.Error("NeedsReseal(new seal) = true")
	}
	// The old-only keyring cannot open B's seal.
	if _, err := old.Open(sealedB, []byte(ws)); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("old keyring Open(B seal) err = %v, want ErrUnknownKey", err)
	}
	// After retiring A, its seals report ErrUnknownKey (still NeedsReseal).
	retired := mustKeyring(t, b)
	if _, err := retired.Open(sealedA, []byte(ws)); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("retired keyring err = %v, want ErrUnknownKey", err)
	}
	if !retired.NeedsReseal(sealedA) {
		t.Error("NeedsReseal for unknown key id = false")
	}
}

func TestSwappedKeyIDFails(t *testing.T) {
	// Relabelling a blob with another key's id must not open it.
	kr := mustKeyring(t, key(1), key(2))
	sealed, _ := kr.Seal([]byte("x"), []byte(ws))
	swapped := bytes.Replace(sealed, []byte(KeyID(key(1))), []byte(KeyID(key(2))), 1)
	if _, err := kr.Open(swapped, []byte(ws)); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("swapped key id: err = %v, want ErrDecrypt", err)
	}
}

func TestOpenMalformed(t *testing.T) {
	kr := mustKeyring(t, key(1))
	id := kr.CurrentKeyID()
	good, _ := kr.Seal([]byte("x"), []byte(ws))
	payload := string(good[len("v1."+id+"."):])
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", ErrMalformed},
		{"plaintext", "inst_live_secret", ErrMalformed},
		{"wrong version", "v2." + id + "." + payload, ErrMalformed},
		{"uppercase version", "V1." + id + "." + payload, ErrMalformed},
		{"no payload separator", "v1." + id + payload, ErrMalformed},
		{"short id", "v1." + id[:7] + "." + payload, ErrMalformed},
		{"long id", "v1." + id + "0." + payload, ErrMalformed},
		{"uppercase id", "v1." + strings.ToUpper("abcdef12") + "." + payload, ErrMalformed},
		{"non-hex id", "v1.zzzzzzzz." + payload, ErrMalformed},
		{"bad base64", "v1." + id + ".!!!!", ErrMalformed},
		{"padded base64", "v1." + id + "." + payload + "=", ErrMalformed},
		{"std alphabet", "v1." + id + "." + strings.NewReplacer("-", "+", "_", "/").Replace(payload) + "+/", ErrMalformed},
		{"payload too short", "v1." + id + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 27)), ErrMalformed},
		{"empty payload", "v1." + id + ".", ErrMalformed},
		{"unknown key", "v1.00000000." + payload, ErrUnknownKey},
		{"extra dot", "v1." + id + "." + payload + ".x", ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := kr.Open([]byte(tt.in), []byte(ws))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open(%q) err = %v, want %v", tt.in, err, tt.want)
			}
			if tt.want == ErrMalformed && kr.NeedsReseal([]byte(tt.in)) {
				t.Error("NeedsReseal(malformed) = true")
			}
		})
	}
}

func TestErrorsDoNotLeakSecrets(t *testing.T) {
	kr := mustKeyring(t, key(1))
	const secret = "inst_live_topsecret"
	sealed, _ := kr.Seal([]byte(secret), []byte(ws))
	payload := string(sealed[len("v1."+kr.CurrentKeyID()+"."):])
	_, err := kr.Open(sealed, []byte("workspaces/other"))
	if err == nil {
		t.Fatal("expected error")
	}
	for _, s := range []string{secret, payload, "workspaces/other"} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error %q contains %q", err, s)
		}
	}
}

func TestParseKeys(t *testing.T) {
	k1, k2, k3 := key(1), key(2), key(3)
	e1, e2, e3 := base64.StdEncoding.EncodeToString(k1), base64.StdEncoding.EncodeToString(k2), base64.StdEncoding.EncodeToString(k3)
	tests := []struct {
		name string
		in   string
		want [][]byte
	}{
		{"single", e1, [][]byte{k1}},
		{"single with whitespace", "  " + e1 + "\n", [][]byte{k1}},
		{"comma", e1 + "," + e2, [][]byte{k1, k2}},
		{"comma with spaces", e1 + " , " + e2 + " ,\t" + e3, [][]byte{k1, k2, k3}},
		{"newline", e2 + "\n" + e1 + "\n", [][]byte{k2, k1}},
		{"crlf", e2 + "\r\n" + e1 + "\r\n", [][]byte{k2, k1}},
		{"file with comments", "# current key\n" + e3 + "\n\n  # retired 2025-01\n  " + e1 + "  \n", [][]byte{k3, k1}},
		{"mixed", e1 + "," + e2 + "\n" + e3, [][]byte{k1, k2, k3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKeys(tt.in)
			if err != nil {
				t.Fatalf("ParseKeys: %v", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d keys, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if !bytes.Equal(got[i], tt.want[i]) {
					t.Errorf("key %d differs", i)
				}
			}
			if _, err := NewKeyring(got...); err != nil {
				t.Errorf("NewKeyring(parsed): %v", err)
			}
		})
	}
}

func TestParseKeysErrors(t *testing.T) {
	good := base64.StdEncoding.EncodeToString(key(9))
	short := base64.StdEncoding.EncodeToString([]byte("sixteen-byte-key"))
	urlKey := base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb, 0xff, 0xfe}, 11)[:32])
	tests := []struct {
		name    string
		in      string
		wantErr string
	}{
		{"empty", "", "no master keys"},
		{"whitespace", " \n\t\n", "no master keys"},
		{"only comments", "# nothing here\n#" + good + "\n", "no master keys"},
		{"not base64", "this-is-not-base64!!", "entry 1 is not valid standard base64"},
		{"raw hex", hex.EncodeToString(key(9)), "entry 1"},
		{"url alphabet", urlKey, "entry 1 is not valid standard base64"},
		{"wrong length", good + "," + short, "entry 2 decodes to 16 bytes, want 32"},
		{"empty entry", good + ",," + good, "entry 2 is empty"},
		{"trailing comma", good + ",", "entry 2 is empty"},
		{"bad on later line", good + "\n\n" + "# c\n" + good + "\n" + "p@ssw0rd-material", "entry 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := ParseKeys(tt.in)
			if err == nil {
				t.Fatalf("ParseKeys = %d keys, want error", len(keys))
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			msg := err.Error()
			for field := range strings.FieldsFuncSeq(tt.in, func(r rune) bool { return r == ',' || r == '\n' || r == ' ' || r == '\t' }) {
				if len(field) >= 4 && field != "nothing" && field != "here" && strings.Contains(msg, field) {
					t.Errorf("error %q leaks input %q", msg, field)
				}
			}
			for _, s := range []string{good, short, urlKey, "p@ssw0rd", hex.EncodeToString(key(9))[:8]} {
				if strings.Contains(msg, s) {
					t.Errorf("error %q leaks %q", msg, s)
				}
			}
		})
	}
}

func TestGenerateKey(t *testing.T) {
	a, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	b, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != KeySize || len(b) != KeySize {
		t.Fatalf("lengths %d, %d", len(a), len(b))
	}
	if bytes.Equal(a, b) || bytes.Equal(a, make([]byte, KeySize)) {
		t.Fatal("GenerateKey is not random")
	}
	kr := mustKeyring(t, a, b)
	sealed, _ := kr.Seal([]byte("x"), nil)
	if got, err := kr.Open(sealed, nil); err != nil || string(got) != "x" {
		t.Fatalf("round trip with generated key: %q, %v", got, err)
	}
	// Round trips through the configuration format.
	parsed, err := ParseKeys(base64.StdEncoding.EncodeToString(a))
	if err != nil || !bytes.Equal(parsed[0], a) {
		t.Fatalf("ParseKeys(GenerateKey) = %v", err)
	}
}

func TestFingerprint(t *testing.T) {
	tests := []struct {
		secret string
		want   string
	}{
		// sha256("") = e3b0c44298fc1c149afbf4c8996fb924...
		{"", "sha256:e3b0c44298fc1c14"},
		// sha256("abc") = ba7816bf8f01cfea414140de5dae2223...
		{"abc", "sha256:ba7816bf8f01cfea"},
	}
	for _, tt := range tests {
		if got := Fingerprint(tt.secret); got != tt.want {
			t.Errorf("Fingerprint(%q) = %q, want %q", tt.secret, got, tt.want)
		}
	}
	if Fingerprint("inst_a") == Fingerprint("inst_b") {
		t.Error("different secrets share a fingerprint")
	}
	if fp := Fingerprint("inst_live_secret"); strings.Contains(fp, "inst") || len(fp) != len("sha256:")+16 {
		t.Errorf("Fingerprint = %q", fp)
	}
}

// TestKeyIDCharset: key ids in sealed blobs are lower-case hex, every
// digit and letter a–f included, nothing next to them in ASCII.
func TestKeyIDCharset(t *testing.T) {
	for s, want := range map[string]bool{"0123456789abcdef": true, "": true, "/": false, ":": false, "`": false, "g": false, "A": false, "F": false} {
		if got := isLowerHex([]byte(s)); got != want {
			t.Errorf("isLowerHex(%q) = %v", s, got)
		}
	}
}
