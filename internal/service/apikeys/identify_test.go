package apikeys_test

import (
	"context"
	"encoding/base64"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agencyplane/agencyplane/internal/instantly"
	"github.com/agencyplane/agencyplane/internal/service/apikeys"
	"github.com/agencyplane/agencyplane/internal/sim"
)

func mask(s string) string { return s[:4] + strings.Repeat("*", len(s)-8) + s[len(s)-4:] }

func TestMatchKey(t *testing.T) {
	ours := base64.StdEncoding.EncodeToString([]byte("0190a3c4-7e86-47af-b764-e075564821ba:sdfEWfCJKlqfAb"))
	other := base64.StdEncoding.EncodeToString([]byte("0190a3c5-1111-47af-b764-e075564821ba:QWErtyUIopASdf"))
	opaque := "sk_live_0123456789abcdefXYZ"
	twin := "sk_live_999999999999999fXYZ" // the same visible ends as opaque
	cases := []struct {
		name   string
		secret string
		keys   []instantly.APIKey
		want   string
	}{
		{"an unmasked list", opaque, []instantly.APIKey{{ID: "a", Key: twin}, {ID: "b", Key: opaque}}, "b"},
		{"the key format names the id", ours, []instantly.APIKey{{ID: "0190a3c5-1111-47af-b764-e075564821ba", Key: mask(other)}, {ID: "0190a3c4-7e86-47af-b764-e075564821ba", Key: mask(ours)}}, "0190a3c4-7e86-47af-b764-e075564821ba"},
		{"the key format names the id, no key field", ours, []instantly.APIKey{{ID: "0190a3c4-7e86-47af-b764-e075564821ba"}}, "0190a3c4-7e86-47af-b764-e075564821ba"},
		{"the named id's key field contradicts", ours, []instantly.APIKey{{ID: "0190a3c4-7e86-47af-b764-e075564821ba", Key: mask(other)}}, ""},
		{"one mask fits", opaque, []instantly.APIKey{{ID: "a", Key: mask(other)}, {ID: "b", Key: mask(opaque)}}, "b"},
		{"two masks fit", opaque, []instantly.APIKey{{ID: "a", Key: mask(twin)}, {ID: "b", Key: mask(opaque)}}, ""},
		{"all stars say nothing", opaque, []instantly.APIKey{{ID: "a", Key: strings.Repeat("*", len(opaque))}}, ""},
		{"not listed", opaque, []instantly.APIKey{{ID: "a", Key: mask(other)}}, ""},
		{"no secret", "", []instantly.APIKey{{ID: "a"}}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := apikeys.MatchKey(c.secret, c.keys); got != c.want {
				t.Fatalf("MatchKey = %q, want %q", got, c.want)
			}
		})
	}
}

// Against the simulator's key list (masked secrets): the workspace's first
// key is found among several, whichever of them is asked about.
func TestIdentifyStoredKeyInTheSimulator(t *testing.T) {
	s := sim.New(sim.Config{})
	hs := httptest.NewServer(s)
	defer hs.Close()
	c, err := instantly.New(instantly.Options{BaseURL: hs.URL})
	if err != nil {
		t.Fatal(err)
	}
	wsID, first := s.CreateWorkspace("Acme")
	keys := map[string]string{} // secret → id
	for _, name := range []string{"sdr", "viewer", "all"} {
		k, err := s.CreateAPIKey(wsID, name, []string{"all:all"})
		if err != nil {
			t.Fatal(err)
		}
		keys[k.Key] = k.ID
	}
	ctx := context.Background()
	id, err := apikeys.IdentifyStoredKey(ctx, c, instantly.Credential{APIKey: first})
	if err != nil || id == "" {
		t.Fatalf("first key: %q, %v", id, err)
	}
	for secret, want := range keys {
		if got, err := apikeys.IdentifyStoredKey(ctx, c, instantly.Credential{APIKey: secret}); err != nil || got != want {
			t.Fatalf("key %s: %q, %v", want, got, err)
		}
		if want == id {
			t.Fatal("two keys identified as one")
		}
	}
	// A key without api_keys:read cannot list: an error, no guess.
	narrow, err := s.CreateAPIKey(wsID, "narrow", []string{"campaigns:read"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := apikeys.IdentifyStoredKey(ctx, c, instantly.Credential{APIKey: narrow.Key}); err == nil || got != "" {
		t.Fatalf("a key that cannot list keys: %q, %v", got, err)
	}
}
