package servicetest

import (
	"slices"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/agencyplane/agencyplane/internal/apierr"
)

// StatusOf is err as a client sees it: services return store and upstream
// errors raw and the API edge maps them with apierr.FromError, so tests
// map them the same way before looking at codes.
func StatusOf(err error) *status.Status {
	if err == nil {
		return status.New(codes.OK, "")
	}
	return apierr.FromError(err).GRPCStatus()
}

// WantErr fails t unless err maps to code; field (when not "") must be
// one of its BadRequest field violations, and reason (when not "") its
// ErrorInfo reason. It returns the status a client would see.
func WantErr(t testing.TB, err error, code codes.Code, field, reason string) *status.Status {
	t.Helper()
	st := StatusOf(err)
	if st.Code() != code {
		t.Fatalf("got %v (%v), want %v", st.Code(), err, code)
	}
	if fs := ViolatedFields(err); field != "" && !slices.Contains(fs, field) {
		t.Fatalf("violations %v do not name %q (%v)", fs, field, err)
	}
	if got := ReasonOf(err); reason != "" && got != reason {
		t.Fatalf("reason %q, want %q (%v)", got, reason, err)
	}
	return st
}

// WantCode fails t unless err, mapped as the API edge maps it, carries
// code; it returns the mapped error.
func WantCode(t testing.TB, err error, code codes.Code) *apierr.Error {
	t.Helper()
	WantErr(t, err, code, "", "")
	return apierr.FromError(err)
}

// WantField fails t unless err is INVALID_ARGUMENT with a BadRequest
// violation naming field.
func WantField(t testing.TB, err error, field string) {
	t.Helper()
	WantErr(t, err, codes.InvalidArgument, field, "")
}

// ViolatedFields lists the fields err's BadRequest detail names, in order.
func ViolatedFields(err error) []string {
	var fields []string
	if err != nil {
		for _, v := range apierr.FromError(err).Violations {
			fields = append(fields, v.GetField())
		}
	}
	return fields
}

// ReasonOf is err's ErrorInfo reason ("" for no error).
func ReasonOf(err error) string {
	if err == nil {
		return ""
	}
	return apierr.ReasonString(apierr.FromError(err).Reason)
}

// Walk pages through a List call: list gets the page token ("" first) and
// returns the page's items and its next_page_token. It fails t on an error,
// on more than maxPages pages, and on a next_page_token that leads to an
// empty page (a token promises more); it returns every item in order.
func Walk[T any](t testing.TB, maxPages int, list func(pageToken string) ([]T, string, error)) []T {
	t.Helper()
	var all []T
	token := ""
	for page := 1; ; page++ {
		if page > maxPages {
			t.Fatalf("more than %d pages; so far %v", maxPages, all)
		}
		items, next, err := list(token)
		if err != nil {
			t.Fatalf("page %d: %v", page, err)
		}
		if page > 1 && len(items) == 0 {
			t.Fatalf("page %d: a next_page_token led to an empty page", page)
		}
		all = append(all, items...)
		if next == "" {
			return all
		}
		token = next
	}
}

// StatusReason is the ErrorInfo reason of a status as results carry it
// (a fan-out's per-workspace status), or "".
func StatusReason(st *spb.Status) string {
	for _, d := range status.FromProto(st).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

// WalkPages is Walk for a caller that checks the items itself: page gets
// the page token and returns the next one; it returns the pages read.
func WalkPages(t testing.TB, limit int, page func(token string) (next string, err error)) int {
	t.Helper()
	return len(Walk(t, limit, func(token string) ([]struct{}, string, error) {
		next, err := page(token)
		return []struct{}{{}}, next, err
	}))
}
