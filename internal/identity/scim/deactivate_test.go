package scim_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/agencyplane/agencyplane/internal/auth"
	"github.com/agencyplane/agencyplane/internal/identity/scim"
	"github.com/agencyplane/agencyplane/internal/store"
	"github.com/agencyplane/agencyplane/internal/store/memory"
	"github.com/agencyplane/agencyplane/internal/testutil/redistest"
)

// TestDeactivationRevokesTokens: deactivating (or deleting) a user records
// their email as deactivated and revokes the tokens they created, nobody
// else's; reactivating lifts the record, not the revocation.
func TestDeactivationRevokesTokens(t *testing.T) {
	for name, st := range map[string]func(t *testing.T) scim.Store{
		"memory": func(*testing.T) scim.Store { return scim.NewMemory() },
		"redis":  func(t *testing.T) scim.Store { return scim.NewRedis(redistest.Start(t), redistest.Prefix(t)) },
	} {
		t.Run(name, func(t *testing.T) { testDeactivation(t, st(t)) })
	}
}

func testDeactivation(t *testing.T, st scim.Store) {
	ctx := context.Background()
	tokens := memory.New().Tokens()
	for _, tok := range []*store.Token{
		{ID: "prov", Hash: auth.HashToken(provisionerToken), Role: auth.RoleProvisioner},
		{ID: "ada-1", Hash: "h1", Role: auth.RoleViewer, CreatorEmail: "ada@agency.example"},
		{ID: "ada-2", Hash: "h2", Role: auth.RoleViewer, CreatorEmail: "ADA@agency.example"},
		{ID: "bob-1", Hash: "h3", Role: auth.RoleViewer, CreatorEmail: "bob@agency.example"},
		{ID: "anon", Hash: "h4", Role: auth.RoleViewer},
	} {
		tok.CreateTime = time.Now()
		if err := tokens.Create(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	authn, err := auth.NewAuthenticator(auth.Options{Tokens: tokens})
	if err != nil {
		t.Fatal(err)
	}
	h, err := scim.New(scim.Options{Store: st, Authn: authn, Tokens: tokens})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c := &client{t: t, base: srv.URL + scim.Prefix, token: provisionerToken}
	off := scim.Deactivated(st)
	revoked := func(id string) bool {
		tok, err := tokens.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return !tok.RevokeTime.IsZero()
	}
	isOff := func(email string) bool {
		v, err := off(ctx, email)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	ada := c.do("POST", "/Users", map[string]any{"schemas": []string{scim.SchemaUser}, "userName": "ada",
		"emails": []any{map[string]any{"value": "Ada@agency.example", "primary": true}}}, 201)["id"].(string)
	if isOff("ada@agency.example") || revoked("ada-1") {
		t.Fatal("an active user is deactivated")
	}
	c.do("PATCH", "/Users/"+ada, patch(map[string]any{"op": "Replace", "path": "active", "value": "False"}), 200)
	if !isOff("ada@agency.example") || !isOff("ADA@Agency.Example") || !revoked("ada-1") || !revoked("ada-2") {
		t.Fatal("deactivation: not recorded or tokens not revoked")
	}
	if revoked("bob-1") || revoked("anon") || revoked("prov") || isOff("bob@agency.example") {
		t.Fatal("deactivation touched someone else")
	}
	c.do("PATCH", "/Users/"+ada, patch(map[string]any{"op": "Replace", "path": "active", "value": "False"}), 200)
	c.do("PATCH", "/Users/"+ada, patch(map[string]any{"op": "replace", "path": "active", "value": true}), 200)
	if isOff("ada@agency.example") || !revoked("ada-1") {
		t.Fatal("reactivation: still refused, or a token came back")
	}

	bob := c.do("POST", "/Users", map[string]any{"schemas": []string{scim.SchemaUser}, "userName": "bob@agency.example"}, 201)["id"].(string)
	c.do("DELETE", "/Users/"+bob, nil, 204)
	if !isOff("bob@agency.example") || !revoked("bob-1") || revoked("anon") {
		t.Fatal("deletion: not recorded or bob's token not revoked")
	}
}
