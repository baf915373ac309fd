package bench

import (
	"context"
	"testing"
	"time"

	"github.com/agencyplane/agencyplane/internal/testutil/redistest"
)

// TestSCIMOffboard: a SCIM deactivation removes the person from every
// workspace the mapping put them in (owners stay), with nothing refused
// or created twice. (Its speed at 150 ms is measured by `make bench-scim`,
// not here.)
func TestSCIMOffboard(t *testing.T) {
	rdb := redistest.Start(t)
	r, err := RunSCIMOffboard(context.Background(), SCIMOffboardConfig{Workspaces: 10, Replicas: 2, Latency: 5 * time.Millisecond,
		RedisURL: "redis://" + rdb.Options().Addr + "/0"})
	t.Log(r)
	if err != nil {
		t.Fatal(err)
	}
	if r.Workspaces != 10 || r.Remaining != 0 || r.OwnersLost != 0 || r.Duplicates != 0 || r.Upstream429 != 0 {
		t.Fatalf("report %v", r)
	}
}
