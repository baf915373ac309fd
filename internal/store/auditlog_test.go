package store_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/agencyplane/agencyplane/internal/store"
	"github.com/agencyplane/agencyplane/internal/store/memory"
)

// TestWithAuditLog: every stored event is also one JSON line, id included;
// a sink that fails is reported and never fails the append.
func TestWithAuditLog(t *testing.T) {
	var buf bytes.Buffer
	s := store.WithAuditLog(memory.New(), &buf, func(err error) { t.Errorf("sink error: %v", err) })
	ctx := context.Background()
	for _, m := range []string{"/a", "/b"} {
		if err := s.Audit().Append(ctx, &store.AuditEvent{Time: time.Now(), Method: m, Workspaces: []string{"workspaces/x"}}); err != nil {
			t.Fatal(err)
		}
	}
	stored, err := s.Audit().List(ctx, store.AuditQuery{Limit: 10})
	if err != nil || len(stored) != 2 {
		t.Fatalf("stored: %v %v", stored, err)
	}
	sc := bufio.NewScanner(&buf)
	var lines []store.AuditEvent
	for sc.Scan() {
		var e store.AuditEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines = append(lines, e)
	}
	if len(lines) != 2 || lines[0].Method != "/a" || lines[1].ID != stored[0].ID || lines[1].Workspaces[0] != "workspaces/x" {
		t.Fatalf("lines %+v, stored %+v", lines, stored)
	}

	var reported error
	failing := store.WithAuditLog(memory.New(), failWriter{}, func(err error) { reported = err })
	if err := failing.Audit().Append(ctx, &store.AuditEvent{Time: time.Now(), Method: "/c"}); err != nil {
		t.Fatalf("a failing sink failed the append: %v", err)
	}
	if reported == nil {
		t.Fatal("the sink's failure was not reported")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }
