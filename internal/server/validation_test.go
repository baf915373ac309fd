package server

import (
	"errors"
	"slices"
	"testing"

	"buf.build/go/protovalidate"
	"google.golang.org/protobuf/proto"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/apierr"
)

// TestCrossFieldRulesAreProtovalidate: the selector's "exactly one of" and
// CreateWorkspace's api_key / admin_workspace / sub_workspace_id rules are
// the messages' protovalidate rules (not Go in the services), and their
// violations name the fields the API has always named.
func TestCrossFieldRulesAreProtovalidate(t *testing.T) {
	v, err := protovalidate.New()
	if err != nil {
		t.Fatal(err)
	}
	key, empty := "k-12345678", ""
	const sub = "0b7d3f4e-8c1a-4a57-9a0e-3c2f1d5e6a7b"
	sel := func(s *agencyv1.WorkspaceSelector) proto.Message {
		return &agencyv1.EnsureTagEverywhereRequest{Selector: s, Label: "q3"}
	}
	for _, tc := range []struct {
		name string
		req  proto.Message
		want []string // fields; nil: valid
	}{
		{"selector: none", sel(&agencyv1.WorkspaceSelector{}), []string{"selector"}},
		{"selector: two forms", sel(&agencyv1.WorkspaceSelector{All: true, LabelSelector: "a=b"}), []string{"selector"}},
		{"selector: names and all", sel(&agencyv1.WorkspaceSelector{All: true, Names: []string{"workspaces/a"}}), []string{"selector"}},
		{"selector: names", sel(&agencyv1.WorkspaceSelector{Names: []string{"workspaces/a"}}), nil},
		{"selector: label selector", sel(&agencyv1.WorkspaceSelector{LabelSelector: "a=b"}), nil},
		{"selector: all", sel(&agencyv1.WorkspaceSelector{All: true}), nil},
		{"create: with a key", &agencyv1.CreateWorkspaceRequest{Workspace: &agencyv1.Workspace{DisplayName: "X", ApiKey: &key}}, nil},
		{"create: through an admin workspace", &agencyv1.CreateWorkspaceRequest{SubWorkspaceId: sub,
			Workspace: &agencyv1.Workspace{DisplayName: "X", AdminWorkspace: "workspaces/a"}}, nil},
		{"create: blank display name", &agencyv1.CreateWorkspaceRequest{Workspace: &agencyv1.Workspace{DisplayName: " \t\u00a0", ApiKey: &key}}, []string{"workspace.display_name"}},
		{"create: no display name", &agencyv1.CreateWorkspaceRequest{Workspace: &agencyv1.Workspace{ApiKey: &key}}, []string{"workspace.display_name"}},
		{"create: no key", &agencyv1.CreateWorkspaceRequest{Workspace: &agencyv1.Workspace{DisplayName: "X"}}, []string{"workspace.api_key"}},
		{"create: empty key", &agencyv1.CreateWorkspaceRequest{Workspace: &agencyv1.Workspace{DisplayName: "X", ApiKey: &empty}}, []string{"workspace.api_key"}},
		{"create: key and admin workspace", &agencyv1.CreateWorkspaceRequest{SubWorkspaceId: sub,
			Workspace: &agencyv1.Workspace{DisplayName: "X", AdminWorkspace: "workspaces/a", ApiKey: &key}}, []string{"workspace.api_key"}},
		{"create: admin workspace without sub workspace", &agencyv1.CreateWorkspaceRequest{
			Workspace: &agencyv1.Workspace{DisplayName: "X", AdminWorkspace: "workspaces/a"}}, []string{"sub_workspace_id"}},
		{"create: sub workspace without admin workspace", &agencyv1.CreateWorkspaceRequest{SubWorkspaceId: sub,
			Workspace: &agencyv1.Workspace{DisplayName: "X", ApiKey: &key}}, []string{"sub_workspace_id"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := v.Validate(tc.req)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			var ae *apierr.Error
			if !errors.As(validationError(err), &ae) {
				t.Fatalf("not an API error: %v", err)
			}
			var got []string
			for _, fv := range ae.Violations {
				got = append(got, fv.GetField())
			}
			slices.Sort(got)
			if got = slices.Compact(got); !slices.Equal(got, tc.want) {
				t.Fatalf("fields %q, want %q (%v)", got, tc.want, err)
			}
		})
	}
}
