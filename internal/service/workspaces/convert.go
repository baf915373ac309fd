package workspaces

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/store"
)

func stateToProto(s store.State) agencyv1.Workspace_State {
	switch s {
	case store.StateActive:
		return agencyv1.Workspace_STATE_ACTIVE
	case store.StateCredentialInvalid:
		return agencyv1.Workspace_STATE_CREDENTIAL_INVALID
	case store.StateWorkspaceMismatch:
		return agencyv1.Workspace_STATE_WORKSPACE_MISMATCH
	case store.StateUpstreamUnavailable:
		return agencyv1.Workspace_STATE_UPSTREAM_UNAVAILABLE
	}
	return agencyv1.Workspace_STATE_UNSPECIFIED
}

// toProto renders a record; the sealed credential never leaves the store
// layer, only its fingerprint.
func toProto(w *store.Workspace) *agencyv1.Workspace {
	return &agencyv1.Workspace{
		Name:                   w.Name,
		DisplayName:            w.DisplayName,
		Labels:                 w.Labels,
		InstantlyWorkspaceId:   w.InstantlyWorkspaceID,
		InstantlyWorkspaceName: w.InstantlyWorkspaceName,
		CredentialFingerprint:  w.CredentialFingerprint,
		State:                  stateToProto(w.State),
		StateMessage:           w.StateMessage,
		LastVerifyTime:         ts(w.LastVerifyTime),
		CreateTime:             ts(w.CreateTime),
		UpdateTime:             ts(w.UpdateTime),
		AdminWorkspace:         w.AdminWorkspace,
	}
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}
