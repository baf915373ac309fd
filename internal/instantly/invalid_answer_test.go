package instantly_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agencyplane/agencyplane/internal/instantly"
)

// An upstream answering 2xx with something that cannot be right is
// Instantly's fault: the error says so (ErrInvalidAnswer) and keeps
// Instantly's own message.
func TestToggleResourceNotAppliedIsInvalidAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"success":false,"message":"resource is locked"}`))
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL, srv.Client().Transport, fastRetries)
	err := c.ToggleTagResource(ctxT(t), instantly.Credential{APIKey: "k"}, instantly.ToggleTagResourceRequest{
		TagIDs: []string{"t"}, ResourceType: instantly.ResourceTypeCampaign, ResourceIDs: []string{"c"}, Assign: true})
	var inv *instantly.InvalidAnswerError
	if !errors.Is(err, instantly.ErrNotApplied) || !errors.Is(err, instantly.ErrInvalidAnswer) || !errors.As(err, &inv) {
		t.Fatalf("err = %v", err)
	}
	if inv.Message != "resource is locked" || !strings.Contains(err.Error(), "resource is locked") {
		t.Fatalf("Instantly's message lost: %+v", inv)
	}
}

func TestCursorNotAdvancingIsInvalidAnswer(t *testing.T) {
	c, _ := fakePages(t, func(string) instantly.Page[instantly.CustomTag] { return tagPage("x", "same") })
	_, err := instantly.Collect(c.AllCustomTags(ctxT(t), instantly.Credential{APIKey: "k"}, instantly.ListCustomTagsParams{}))
	if !errors.Is(err, instantly.ErrCursorNotAdvancing) || !errors.Is(err, instantly.ErrInvalidAnswer) {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "same") {
		t.Fatalf("the cursor (it may be an email) is in the error: %v", err)
	}
}
