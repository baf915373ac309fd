package auth

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func TestAuthenticate(t *testing.T) {
	tok, err := GenerateToken()
	if err != nil || !strings.HasPrefix(tok, TokenPrefix) || len(tok) < 40 {
		t.Fatalf("token %q %v", tok, err)
	}
	a, err := NewAuthenticator(HashToken(tok))
	if err != nil {
		t.Fatal(err)
	}
	ctxWith := func(v ...string) context.Context {
		md := metadata.MD{}
		for _, s := range v {
			md.Append("authorization", s)
		}
		return metadata.NewIncomingContext(context.Background(), md)
	}
	p, err := a.Authenticate(ctxWith("Bearer " + tok))
	if err != nil || p.Role != RoleAdmin || p.ID != "bootstrap" {
		t.Fatalf("valid token: %v %v", p, err)
	}
	if _, err := a.Authenticate(ctxWith("bearer " + tok)); err != nil {
		t.Fatalf("scheme is case-insensitive: %v", err)
	}
	for _, bad := range [][]string{nil, {""}, {"Basic " + tok}, {"Bearer "}, {tok}, {"Bearer " + tok + "x"}} {
		_, err := a.Authenticate(ctxWith(bad...))
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("%q: %v, want Unauthenticated", bad, err)
		}
		if err != nil && strings.Contains(err.Error(), tok) {
			t.Errorf("error echoes the token: %v", err)
		}
	}
	if _, err := NewAuthenticator("nothex"); err == nil {
		t.Fatal("malformed hash accepted")
	}
}
