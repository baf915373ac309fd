package sim

import "testing"

func TestScopeAllows(t *testing.T) {
	tests := []struct {
		name     string
		granted  []string
		required string
		want     bool
	}{
		{"exact", []string{"workspaces:read"}, "workspaces:read", true},
		{"resource wildcard", []string{"workspaces:all"}, "workspaces:read", true},
		{"action wildcard", []string{"all:read"}, "workspaces:read", true},
		{"full wildcard", []string{"all:all"}, "workspace_members:delete", true},
		{"one of many", []string{"campaigns:read", "workspaces:update"}, "workspaces:update", true},
		{"other action", []string{"workspaces:read"}, "workspaces:update", false},
		{"other resource", []string{"campaigns:all"}, "workspaces:read", false},
		{"other action wildcard", []string{"all:read"}, "workspaces:update", false},
		{"prefix is not a match", []string{"workspace:read"}, "workspaces:read", false},
		{"no scopes", nil, "workspaces:read", false},
		{"none required", nil, "", true},
		{"malformed requirement", []string{"all:all"}, "workspaces", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := scopeAllows(tt.granted, tt.required); got != tt.want {
				t.Errorf("scopeAllows(%q, %q) = %v, want %v", tt.granted, tt.required, got, tt.want)
			}
		})
	}
}
