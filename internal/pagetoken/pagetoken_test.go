package pagetoken

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func raw(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestRoundTrip(t *testing.T) {
	tests := []Token{
		{After: "workspaces/acme", FilterHash: Hash("env=prod")},
		{After: "x", FilterHash: ""},
		{After: "name with spaces/ü/\"quotes\"", FilterHash: "abc"},
		{After: strings.Repeat("z", 500), FilterHash: Hash()},
	}
	for _, tok := range tests {
		t.Run(tok.After[:min(len(tok.After), 20)], func(t *testing.T) {
			s := Encode(tok)
			if strings.ContainsAny(s, "+/=") {
				t.Errorf("token %q is not unpadded base64url", s)
			}
			if len(tok.After) >= 8 && strings.Contains(s, tok.After) {
				t.Errorf("token %q shows After in clear text", s)
			}
			got, err := Decode(s, tok.FilterHash)
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
	tok := Token{After: "a", FilterHash: "b"}
	if Encode(tok) != Encode(tok) {
		t.Fatal("Encode is not deterministic")
	}
	if Encode(tok) == Encode(Token{After: "a", FilterHash: "c"}) {
		t.Fatal("FilterHash not encoded")
	}
}

func TestDecodeErrors(t *testing.T) {
	good := Encode(Token{After: "w/1", FilterHash: "f1"})
	urlForm := Encode(Token{After: "??>??~", FilterHash: "f1"})
	stdAlphabet := strings.NewReplacer("-", "+", "_", "/").Replace(urlForm)
	if stdAlphabet == urlForm {
		t.Fatal("test bug: token has no URL-specific characters")
	}
	if _, err := Decode(urlForm, "f1"); err != nil {
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
		{"not json", raw("hello"), "f1"},
		{"json array", raw(`[1,"a"]`), "f1"},
		{"json null", raw(`null`), ""},
		{"trailing data", raw(`{"v":1,"a":"x","f":"f1"}{}`), "f1"},
		{"trailing garbage", raw(`{"v":1,"a":"x","f":"f1"} x`), "f1"},
		{"unknown field", raw(`{"v":1,"a":"x","f":"f1","admin":true}`), "f1"},
		{"missing version", raw(`{"a":"x","f":"f1"}`), "f1"},
		{"version 0", raw(`{"v":0,"a":"x","f":"f1"}`), "f1"},
		{"version 2", raw(`{"v":2,"a":"x","f":"f1"}`), "f1"},
		{"version string", raw(`{"v":"1","a":"x","f":"f1"}`), "f1"},
		{"empty after", raw(`{"v":1,"a":"","f":"f1"}`), "f1"},
		{"missing after", raw(`{"v":1,"f":"f1"}`), "f1"},
		{"filter mismatch", good, "f2"},
		{"filter dropped", good, ""},
		{"filter added", Encode(Token{After: "x"}), "f1"},
		{"too long", Encode(Token{After: strings.Repeat("a", MaxTokenLength), FilterHash: "f1"}), "f1"},
		{"truncated", good[:len(good)-3], "f1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := Decode(tt.token, tt.filter)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Decode(%q) = %+v, %v; want ErrInvalid", tt.token, tok, err)
			}
			if tok != (Token{}) {
				t.Errorf("Decode returned non-zero token %+v with error", tok)
			}
		})
	}
	// Sanity: the good token does decode with its own filter.
	if _, err := Decode(good, "f1"); err != nil {
		t.Fatalf("good token: %v", err)
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
	f.Add(Encode(Token{After: "workspaces/a", FilterHash: "f"}), "f")
	f.Add(Encode(Token{After: "x"}), "")
	f.Add("", "")
	f.Add("!!!", "x")
	f.Add(raw(`{"v":1,"a":"x"}`), "")
	f.Add(raw(`{"v":2,"a":"x"}`), "")
	f.Add(raw(`{"v":1,"a":"\ud800"}`), "")
	f.Fuzz(func(t *testing.T, s, filter string) {
		tok, err := Decode(s, filter)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Decode error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if tok.After == "" || tok.FilterHash != filter {
			t.Fatalf("Decode accepted %+v for filter %q", tok, filter)
		}
		re := Encode(tok)
		if len(re) > MaxTokenLength {
			return // decoding can expand escapes; such tokens were never issued by Encode
		}
		again, err := Decode(re, filter)
		if err != nil || again != tok {
			t.Fatalf("re-encode of %+v: %+v, %v", tok, again, err)
		}
	})
}
