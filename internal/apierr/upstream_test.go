package apierr

import (
	"context"
	"errors"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/agencyplane/agencyplane/internal/instantly"
)

// Upstream oddities (a 2xx answer that cannot be right) are UNAVAILABLE,
// not INTERNAL: the fault is Instantly's, a later retry may pass, and the
// operator sees Instantly's message. There is no UPSTREAM_INVALID reason in
// the proto; the metadata says "upstream_answer": "invalid".
func TestInvalidUpstreamAnswer(t *testing.T) {
	notApplied := toggleNotApplied(t)
	cursor := cursorStuck(t)
	for _, tc := range []struct {
		err  error
		says string
	}{
		{notApplied, "resource is locked"},
		{cursor, "cursor did not advance"},
	} {
		e := FromError(tc.err)
		st := e.GRPCStatus()
		if st.Code() != codes.Unavailable || e.Reason.String() != "ERROR_REASON_UPSTREAM_UNAVAILABLE" {
			t.Fatalf("%v: %v %v", tc.err, st.Code(), e.Reason)
		}
		if e.Metadata["upstream_answer"] != "invalid" {
			t.Fatalf("%v: metadata %v", tc.err, e.Metadata)
		}
		if !strings.Contains(st.Message(), tc.says) || !strings.HasPrefix(st.Message(), "Instantly") {
			t.Fatalf("%v: message %q", tc.err, st.Message())
		}
		if !errors.Is(e, instantly.ErrInvalidAnswer) {
			t.Fatal("cause not kept")
		}
	}
}

func toggleNotApplied(t *testing.T) error {
	t.Helper()
	return &instantly.InvalidAnswerError{Kind: instantly.ErrNotApplied, Detail: "POST /custom-tags/toggle-resource", Message: "resource is locked"}
}

func cursorStuck(t *testing.T) error {
	t.Helper()
	seq := instantly.All(context.Background(), func(context.Context, string) (*instantly.Page[int], error) {
		return &instantly.Page[int]{Items: []int{1}, NextStartingAfter: "same"}, nil
	})
	_, err := instantly.Collect(seq)
	if err == nil {
		t.Fatal("no error")
	}
	return err
}
