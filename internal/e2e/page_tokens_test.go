package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"testing"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/pagetoken"
	"github.com/agencyplane/agencyplane/internal/sim"
)

// TestPageTokensSigned: page tokens are signed with a key derived from the
// master key, so a token one replica issued pages on another; a forged,
// altered or foreign token is refused by every List method with the one
// same answer, over gRPC and REST.
func TestPageTokensSigned(t *testing.T) {
	reps := startReplicas(t, sim.Config{}, 2)
	ctx := context.Background()
	for i := range 3 {
		_, key := reps[0].sim.CreateWorkspace(fmt.Sprintf("page%d", i))
		if _, err := reps[0].grpc(testToken).Create(ctx, &agencyv1.CreateWorkspaceRequest{WorkspaceId: fmt.Sprintf("page%d", i),
			Workspace: &agencyv1.Workspace{DisplayName: "p", ApiKey: &key}}); err != nil {
			t.Fatal(err)
		}
	}
	first, err := reps[0].grpc(testToken).List(ctx, &agencyv1.ListWorkspacesRequest{PageSize: 1})
	if err != nil || first.GetNextPageToken() == "" {
		t.Fatalf("first page: %v %v", first, err)
	}
	second, err := reps[1].grpc(testToken).List(ctx, &agencyv1.ListWorkspacesRequest{PageSize: 1, PageToken: first.GetNextPageToken()})
	if err != nil || len(second.GetWorkspaces()) != 1 || second.GetWorkspaces()[0].GetName() == first.GetWorkspaces()[0].GetName() {
		t.Fatalf("the other replica's token: %v %v", second, err)
	}

	good := first.GetNextPageToken()
	raw, err := base64.RawURLEncoding.DecodeString(good)
	if err != nil {
		t.Fatal(err)
	}
	flipped := append([]byte(nil), raw...)
	flipped[len(flipped)-3] ^= 0x01 // inside the JSON: a different position
	bad := map[string]string{
		"forged v1":    base64.RawURLEncoding.EncodeToString([]byte(`{"v":1,"a":"workspaces/page2"}`)),
		"forged v2":    base64.RawURLEncoding.EncodeToString([]byte(`{"v":2,"a":"workspaces/page2"}`)),
		"bit flipped":  base64.RawURLEncoding.EncodeToString(flipped),
		"truncated":    good[:len(good)-2],
		"garbage":      "not-a-token",
		"other filter": good, // sent with a filter below
	}
	lists := []struct {
		method string
		req    func(token string) proto.Message
		resp   proto.Message
	}{
		{"agency.v1.WorkspaceService/ListWorkspaces", func(tok string) proto.Message {
			return &agencyv1.ListWorkspacesRequest{PageToken: tok, Filter: "x=y"}
		}, &agencyv1.ListWorkspacesResponse{}},
		{"agency.v1.TokenService/ListTokens", func(tok string) proto.Message { return &agencyv1.ListTokensRequest{PageToken: tok} }, &agencyv1.ListTokensResponse{}},
		{"agency.v1.AuditService/ListEvents", func(tok string) proto.Message { return &agencyv1.ListEventsRequest{PageToken: tok} }, &agencyv1.ListEventsResponse{}},
		{"google.longrunning.Operations/ListOperations", func(tok string) proto.Message {
			return &longrunningpb.ListOperationsRequest{Name: "operations", PageToken: tok}
		}, &longrunningpb.ListOperationsResponse{}},
		{"agency.v1.MemberService/ListMembers", func(tok string) proto.Message {
			return &agencyv1.ListMembersRequest{Parent: "workspaces/page0", PageToken: tok}
		}, &agencyv1.ListMembersResponse{}},
		{"agency.v1.GroupMemberService/ListGroupMembers", func(tok string) proto.Message {
			return &agencyv1.ListGroupMembersRequest{Parent: "workspaces/page0", PageToken: tok}
		}, &agencyv1.ListGroupMembersResponse{}},
	}
	// A forger who knows the format and the (public) filter hash still
	// cannot make a token.
	for _, v := range []int{1, 2} {
		forged := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"v":%d,"a":"workspaces/page1","f":%q}`, v, pagetoken.Hash("workspaces", ""))))
		_, err := reps[1].grpc(testToken).List(ctx, &agencyv1.ListWorkspacesRequest{PageSize: 1, PageToken: forged})
		wantField(t, wantCode(t, err, codes.InvalidArgument), "page_token")
	}
	var want string
	for _, inv := range reps[1].invokers(testToken) {
		for _, l := range lists {
			for name, tok := range bad {
				err := inv.Invoke(ctx, l.method, l.req(tok), l.resp)
				st := wantCode(t, err, codes.InvalidArgument)
				wantField(t, st, "page_token")
				if want == "" {
					want = st.Message()
				}
				if st.Message() != want {
					t.Fatalf("%s %s over %s: %q, want the one answer %q", l.method, name, inv.Transport(), st.Message(), want)
				}
			}
		}
	}
}
