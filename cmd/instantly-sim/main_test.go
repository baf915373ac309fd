package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agencyplane/agencyplane/internal/testutil/syncbuf"
)

func TestParseOptions(t *testing.T) {
	defaults := options{addr: "127.0.0.1:8089", rps: 100, rpm: 6000}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    options
		wantErr bool
	}{
		{name: "defaults", want: defaults},
		{name: "flags", args: []string{"--addr", ":9000", "--rps", "10", "--rpm", "300", "--latency", "25ms",
			"--fault-rate", "0.1", "--fault-after-rate", "0.2", "--seed", "7", "--workspaces", "3", "--log-level", "debug"},
			want: options{addr: ":9000", rps: 10, rpm: 300, latency: 25 * time.Millisecond, faultRate: 0.1, faultAfter: 0.2, seed: 7, workspaces: 3, logLevel: -4}},
		{name: "env fills flags not given", env: map[string]string{"INSTANTLY_SIM_ADDR": ":7000", "INSTANTLY_SIM_FAULT_RATE": "0.5",
			"INSTANTLY_SIM_FAULT_AFTER_RATE": "0.25", "INSTANTLY_SIM_WORKSPACES": "2"},
			want: options{addr: ":7000", rps: 100, rpm: 6000, faultRate: 0.5, faultAfter: 0.25, workspaces: 2}},
		{name: "fault after rate bounds", args: []string{"--fault-after-rate", "1"}, env: map[string]string{"INSTANTLY_SIM_FAULT_AFTER_RATE": "0.5"},
			want: options{addr: "127.0.0.1:8089", rps: 100, rpm: 6000, faultAfter: 1}},
		{name: "flag beats env", args: []string{"--rps", "5"}, env: map[string]string{"INSTANTLY_SIM_RPS": "50"},
			want: options{addr: "127.0.0.1:8089", rps: 5, rpm: 6000}},
		{name: "bad env value", env: map[string]string{"INSTANTLY_SIM_LATENCY": "soon"}, wantErr: true},
		{name: "fault rate above 1", args: []string{"--fault-rate", "1.5"}, wantErr: true},
		{name: "fault after rate above 1", args: []string{"--fault-after-rate", "1.01"}, wantErr: true},
		{name: "fault after rate below 0", args: []string{"--fault-after-rate=-0.1"}, wantErr: true},
		{name: "fault after rate NaN", args: []string{"--fault-after-rate", "NaN"}, wantErr: true},
		{name: "fault after rate above 1 in env", env: map[string]string{"INSTANTLY_SIM_FAULT_AFTER_RATE": "2"}, wantErr: true},
		{name: "fault after rate not a number", env: map[string]string{"INSTANTLY_SIM_FAULT_AFTER_RATE": "often"}, wantErr: true},
		{name: "unknown flag", args: []string{"--nope"}, wantErr: true},
		{name: "stray argument", args: []string{"serve"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseOptions(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestRunServesDemoWorkspacesAndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncbuf.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--addr", "127.0.0.1:0", "--workspaces", "2"}, func(string) string { return "" }, &stdout, &stderr)
	}()

	addr := waitForListening(t, &stderr, done)
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("stdout %q, want 2 lines", stdout.String())
	}
	fields := strings.Fields(lines[0])
	if len(fields) != 3 || fields[1] != "demo-1" {
		t.Fatalf("line %q, want \"id demo-1 key\"", lines[0])
	}

	r, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/api/v2/workspaces/current", nil)
	r.Header.Set("Authorization", "Bearer "+fields[2])
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	var ws struct{ ID string }
	_ = json.NewDecoder(resp.Body).Decode(&ws)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || ws.ID != fields[0] {
		t.Errorf("GET current: %d, id %q, want %q", resp.StatusCode, ws.ID, fields[0])
	}

	for _, path := range []string{"/api/v2/campaigns", "/api/v2/accounts"} {
		r, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
		r.Header.Set("Authorization", "Bearer "+fields[2])
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		var page struct{ Items []json.RawMessage }
		_ = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(page.Items) != demoResources {
			t.Errorf("GET %s: %d, %d items, want %d demo items", path, resp.StatusCode, len(page.Items), demoResources)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not stop after cancel")
	}
}

// waitForListening reads the address from the JSON "listening" log line.
func waitForListening(t *testing.T, stderr *syncbuf.Buffer, done <-chan error) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		sc := bufio.NewScanner(strings.NewReader(stderr.String()))
		for sc.Scan() {
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				return line.Addr
			}
		}
		select {
		case err := <-done:
			t.Fatalf("run ended early: %v\n%s", err, stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("no listening line in %s", stderr.String())
	return ""
}

// --fault-after-rate reaches the simulator: at 1 every successful write is applied, then
// answered 5xx or dropped.
func TestRunFaultAfterRate(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncbuf.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--addr", "127.0.0.1:0", "--workspaces", "1", "--seed", "5"},
			func(k string) string { return map[string]string{"INSTANTLY_SIM_FAULT_AFTER_RATE": "1"}[k] }, &stdout, &stderr)
	}()
	addr := waitForListening(t, &stderr, done)
	fields := strings.Fields(stdout.String())
	if len(fields) != 3 {
		t.Fatalf("stdout %q", stdout.String())
	}
	wsID, key := fields[0], fields[2]
	send := func(method, path, body string) (*http.Response, error) {
		r, _ := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+key)
		if body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
		return http.DefaultClient.Do(r)
	}

	const n = 6
	for i := range n {
		resp, err := send(http.MethodPost, "/api/v2/custom-tags", fmt.Sprintf(`{"label":"tag-%d"}`, i))
		switch {
		case err != nil && !errors.Is(err, io.EOF):
			t.Fatalf("create %d: %v, want a 5xx or EOF", i, err)
		case err == nil:
			resp.Body.Close()
			if resp.StatusCode < 500 {
				t.Fatalf("create %d: status %d, want a 5xx or EOF", i, resp.StatusCode)
			}
		}
	}
	resp, err := send(http.MethodGet, "/api/v2/custom-tags?limit=100", "")
	if err != nil {
		t.Fatal(err)
	}
	var page struct{ Items []struct{ Label string } }
	_ = json.NewDecoder(resp.Body).Decode(&page)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(page.Items) != n {
		t.Errorf("GET custom-tags: %d, %d tags, want all %d applied", resp.StatusCode, len(page.Items), n)
	}

	resp, err = http.Get("http://" + addr + "/_sim/stats")
	if err != nil {
		t.Fatal(err)
	}
	var stats map[string]struct {
		Faults      int `json:"faults"`
		FaultsAfter int `json:"faults_after"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&stats)
	resp.Body.Close()
	if st := stats[wsID]; st.Faults != n || st.FaultsAfter != n {
		t.Errorf("stats %+v, want %d faults after the write", st, n)
	}
	if !strings.Contains(stderr.String(), `"fault_after_rate":1`) {
		t.Errorf("the listening line does not log fault_after_rate: %s", stderr.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
}
