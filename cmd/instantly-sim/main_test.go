package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
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
			"--fault-rate", "0.1", "--seed", "7", "--workspaces", "3", "--log-level", "debug"},
			want: options{addr: ":9000", rps: 10, rpm: 300, latency: 25 * time.Millisecond, faultRate: 0.1, seed: 7, workspaces: 3, logLevel: -4}},
		{name: "env fills flags not given", env: map[string]string{"INSTANTLY_SIM_ADDR": ":7000", "INSTANTLY_SIM_FAULT_RATE": "0.5", "INSTANTLY_SIM_WORKSPACES": "2"},
			want: options{addr: ":7000", rps: 100, rpm: 6000, faultRate: 0.5, workspaces: 2}},
		{name: "flag beats env", args: []string{"--rps", "5"}, env: map[string]string{"INSTANTLY_SIM_RPS": "50"},
			want: options{addr: "127.0.0.1:8089", rps: 5, rpm: 6000}},
		{name: "bad env value", env: map[string]string{"INSTANTLY_SIM_LATENCY": "soon"}, wantErr: true},
		{name: "fault rate above 1", args: []string{"--fault-rate", "1.5"}, wantErr: true},
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

// syncBuffer is written by the server goroutine and read by the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestRunServesDemoWorkspacesAndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
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
func waitForListening(t *testing.T, stderr *syncBuffer, done <-chan error) string {
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
