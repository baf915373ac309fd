package fieldmask

import (
	"slices"
	"testing"
)

func TestPaths(t *testing.T) {
	got := Paths([]string{"displayName", "display_name", "labels", "instantlyWorkspaceId"})
	want := []string{"display_name", "display_name", "labels", "instantly_workspace_id"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v", got)
	}
}
