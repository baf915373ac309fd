package e2e

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/agencyplane/agencyplane/internal/config"
	"github.com/agencyplane/agencyplane/internal/testutil/redistest"
	"github.com/agencyplane/agencyplane/internal/vault"
)

func readyz(t *testing.T, e *env) (int, string) {
	t.Helper()
	resp, err := http.Get(e.httpBase + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func grpcHealth(t *testing.T, e *env) healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	resp, err := healthpb.NewHealthClient(e.conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetStatus()
}

// A restart with another master key than the one the stored credentials
// were sealed with is not ready, says how many credentials it cannot open
// (in one log line and in /readyz), and recovers once they are gone; with
// the old key kept as a second key it is ready.
func TestWrongMasterKeyIsNotReady(t *testing.T) {
	url := "redis://" + redistest.Start(t).Options().Addr + "/0"
	prefix := redistest.Prefix(t)
	keyA, err := vault.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	keyB, err := vault.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	withKeys := func(keys ...[]byte) func(*config.Config) {
		return func(c *config.Config) {
			var enc []string
			for _, k := range keys {
				enc = append(enc, base64.StdEncoding.EncodeToString(k))
			}
			c.MasterKey = strings.Join(enc, ",")
			c.RedisPrefix = prefix
		}
	}

	t.Run("register with key A", func(t *testing.T) {
		e := startEnvWith(t, url, 0, withKeys(keyA))
		registerSimWorkspace(t, e, "acme")
		registerSimWorkspace(t, e, "beta")
		if code, body := readyz(t, e); code != http.StatusOK {
			t.Fatalf("readyz: %d %s", code, body)
		}
	})

	t.Run("restart with keys B then A", func(t *testing.T) {
		e := startEnvWith(t, url, 0, withKeys(keyB, keyA))
		if code, body := readyz(t, e); code != http.StatusOK {
			t.Fatalf("readyz with the sealing key still configured: %d %s", code, body)
		}
	})

	t.Run("restart with key B", func(t *testing.T) {
		e := startEnvWith(t, url, 20*time.Millisecond, withKeys(keyB))
		code, body := readyz(t, e)
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "2 stored credentials cannot be opened") {
			t.Fatalf("readyz: %d %s", code, body)
		}
		logs := e.logs.String()
		if !strings.Contains(logs, "2 of 2 stored credentials cannot be opened with the configured master keys") ||
			!strings.Contains(logs, `"missing_key_ids":"`+vault.KeyID(keyA)+`"`) || !strings.Contains(logs, `"level":"ERROR"`) {
			t.Fatalf("no error line naming the count and the missing key:\n%s", logs)
		}
		deadline := time.Now().Add(5 * time.Second)
		for grpcHealth(t, e) != healthpb.HealthCheckResponse_NOT_SERVING {
			if time.Now().After(deadline) {
				t.Fatal("gRPC health still SERVING")
			}
			time.Sleep(20 * time.Millisecond)
		}
		// Still serving the API, so the operator can repair: each workspace
		// deleted (or rotated) no longer counts.
		rest := e.rest(testToken)
		if err := rest.Delete(context.Background(), "workspaces/acme"); err != nil {
			t.Fatal(err)
		}
		if code, body := readyz(t, e); code != http.StatusServiceUnavailable || !strings.Contains(body, "1 stored credentials cannot be opened") {
			t.Fatalf("readyz after one delete: %d %s", code, body)
		}
		if err := rest.Delete(context.Background(), "workspaces/beta"); err != nil {
			t.Fatal(err)
		}
		if code, body := readyz(t, e); code != http.StatusOK {
			t.Fatalf("readyz after both deletes: %d %s", code, body)
		}
	})
}
