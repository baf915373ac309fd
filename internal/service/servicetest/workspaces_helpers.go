package servicetest

import (
	"slices"
	"testing"

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

// Requests counts the API requests the simulator has seen for an Instantly
// workspace: a test that a refusal reached Instantly not at all compares
// it before and after.
func (e *Env) Requests(instantlyID string) int64 {
	return e.Sim.Stats()[instantlyID].Requests
}

// RevokeKeys revokes every API key of an Instantly workspace, so a
// registered workspace's stored credential is refused (401).
func (e *Env) RevokeKeys(t testing.TB, instantlyID string) {
	t.Helper()
	st, err := e.Sim.WorkspaceState(instantlyID)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range st.APIKeys {
		if err := e.Sim.RevokeAPIKey(instantlyID, k.ID); err != nil {
			t.Fatal(err)
		}
	}
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
