// Package scim serves SCIM 2.0 provisioning (RFC 7643/7644) at /scim/v2:
// Users and Groups (create, read, list with `eq` filters and paging,
// replace, PATCH, delete) and the discovery resources, stored in the
// control plane's backend. Only a token with the provisioner role may call
// it. Parsing is lenient where identity providers are known to differ from
// the RFC (Entra's PascalCase PATCH ops and "True"/"False" strings).
package scim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/agencyplane/agencyplane/internal/auth"
	"github.com/agencyplane/agencyplane/internal/members"
	"github.com/agencyplane/agencyplane/internal/store"
)

// Prefix is where the handler is mounted.
const Prefix = "/scim/v2"

// Options configures a Handler.
type Options struct {
	Store  Store
	Authn  *auth.Authenticator
	Logger *slog.Logger
	Now    func() time.Time
	// MaxPageSize caps count (default 1000).
	MaxPageSize int

	// Provisioning (all of Mapping, Fanout, Operations; without them SCIM
	// only keeps its state).
	Mapping    *Mapping
	Fanout     Fanout
	Operations Operations
	// Audit receives provisioning's events.
	Audit store.Audit
	// MaxRemovalsPerHour caps removals (workspaces × people) started per
	// hour; the excess is paused until an admin releases it (default 500).
	MaxRemovalsPerHour int
	// SettleTimeout is how long a removal waits for the person's invite
	// operation to end (default 20s).
	SettleTimeout time.Duration
	// ReconcileInterval: how often Run reconciles everyone (0 = never).
	ReconcileInterval time.Duration
	// Registry receives the paused-removals metric (nil: not exported).
	Registry prometheus.Registerer
	// Locker serializes a user's provisioning across replicas (the member
	// lock's store; nil: within this process only).
	Locker members.Locker
	// Tokens are the control-plane tokens: deactivating a person revokes
	// those they created (nil: none are revoked).
	Tokens store.Tokens
	// Workspaces is the registry (unscoped): reconciliation invites a
	// group's members into workspaces its selector picks after they
	// joined (nil: only when they join).
	Workspaces store.Workspaces
}

// Handler is the SCIM HTTP API.
type Handler struct {
	opts   Options
	mux    *http.ServeMux
	locks  userLocks
	paused prometheus.Counter
}

// New returns the handler; mount it at Prefix + "/".
func New(opts Options) (*Handler, error) {
	if opts.Store == nil || opts.Authn == nil {
		return nil, errors.New("scim: a store and an authenticator are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxPageSize <= 0 {
		opts.MaxPageSize = 1000
	}
	if opts.MaxRemovalsPerHour <= 0 {
		opts.MaxRemovalsPerHour = 500
	}
	if opts.SettleTimeout <= 0 {
		opts.SettleTimeout = 20 * time.Second
	}
	if opts.Mapping != nil && (opts.Fanout == nil || opts.Operations == nil) {
		return nil, errors.New("scim: a mapping needs the fan-out service and operations")
	}
	h := &Handler{opts: opts, mux: http.NewServeMux(), paused: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "agencyd_scim_removals_paused_total",
		Help: "Workspace removals SCIM provisioning paused because --scim-max-removals-per-hour was reached.",
	})}
	if opts.Registry != nil {
		if err := opts.Registry.Register(h.paused); err != nil {
			return nil, fmt.Errorf("scim: %w", err)
		}
	}
	p := Prefix
	h.mux.HandleFunc("GET "+p+"/ServiceProviderConfig", h.serviceProviderConfig)
	h.mux.HandleFunc("GET "+p+"/ResourceTypes", h.resourceTypes)
	h.mux.HandleFunc("GET "+p+"/ResourceTypes/{id}", h.resourceTypes)
	h.mux.HandleFunc("GET "+p+"/Schemas", h.schemas)
	h.mux.HandleFunc("GET "+p+"/Schemas/{id}", h.schemas)
	h.mux.HandleFunc("GET "+p+"/Users", h.listUsers)
	h.mux.HandleFunc("POST "+p+"/Users", h.createUser)
	h.mux.HandleFunc("GET "+p+"/Users/{id}", h.getUser)
	h.mux.HandleFunc("PUT "+p+"/Users/{id}", h.replaceUser)
	h.mux.HandleFunc("PATCH "+p+"/Users/{id}", h.patchUser)
	h.mux.HandleFunc("DELETE "+p+"/Users/{id}", h.deleteUser)
	h.mux.HandleFunc("GET "+p+"/Groups", h.listGroups)
	h.mux.HandleFunc("POST "+p+"/Groups", h.createGroup)
	h.mux.HandleFunc("GET "+p+"/Groups/{id}", h.getGroup)
	h.mux.HandleFunc("PUT "+p+"/Groups/{id}", h.replaceGroup)
	h.mux.HandleFunc("PATCH "+p+"/Groups/{id}", h.patchGroup)
	h.mux.HandleFunc("DELETE "+p+"/Groups/{id}", h.deleteGroup)
	return h, nil
}

// ServeHTTP authenticates the caller (a provisioner token) and serves.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p, err := h.authenticate(r)
	if err != nil {
		authError(w, err)
		return
	}
	if p.Role != auth.RoleProvisioner {
		writeError(w, &scimError{Status: http.StatusForbidden, Detail: "SCIM needs a token with the provisioner role"})
		return
	}
	reqID := r.Header.Get("X-Request-Id")
	if !uuidRE.MatchString(reqID) {
		reqID = newID()
	}
	w.Header().Set("X-Request-Id", reqID)
	h.opts.Logger.DebugContext(r.Context(), "scim", "method", r.Method, "path", r.URL.Path, "principal", p.ID, "request_id", reqID)
	ctx := context.WithValue(auth.WithPrincipal(r.Context(), p), requestIDKey{}, reqID)
	h.mux.ServeHTTP(w, r.WithContext(ctx))
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

type requestIDKey struct{}

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// provision reconciles the users a write touched; a failure answers 503
// so the identity provider retries (the retry reconciles again, and finds
// only what is left to do).
func (h *Handler) provision(w http.ResponseWriter, r *http.Request, userIDs ...string) bool {
	var errs []error
	seen := map[string]bool{}
	for _, id := range userIDs {
		if id == "" || seen[id] {
			continue
		}
		seen[id] = true
		if err := h.reconcile(r.Context(), id, requestID(r.Context())); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		h.opts.Logger.ErrorContext(r.Context(), "scim provisioning failed; the identity provider's retry resumes it",
			"request_id", requestID(r.Context()), "error", err.Error())
		writeError(w, &scimError{Status: http.StatusServiceUnavailable, Detail: "saved, but provisioning the workspaces failed; retry the request"})
		return false
	}
	return true
}

// authError answers a failed authentication with the HTTP status of its
// gRPC code and its public message (never the presented secret).
func authError(w http.ResponseWriter, err error) {
	st := status.Convert(err)
	code := http.StatusUnauthorized
	switch st.Code() {
	case codes.PermissionDenied:
		code = http.StatusForbidden
	case codes.ResourceExhausted:
		code = http.StatusTooManyRequests
	case codes.Unavailable:
		code = http.StatusServiceUnavailable
	}
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="scim"`)
	}
	writeError(w, &scimError{Status: code, Detail: st.Message()})
}

func (h *Handler) authenticate(r *http.Request) (*auth.Principal, error) {
	md := metadata.MD{}
	if v := r.Header.Get("Authorization"); v != "" {
		md.Set("authorization", v)
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	c := auth.Caller{Source: host, ForwardedFor: r.Header.Values("X-Forwarded-For")}
	return h.opts.Authn.Authenticate(metadata.NewIncomingContext(r.Context(), md), c)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/scim+json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, e *scimError) {
	body := map[string]any{"schemas": []string{SchemaError}, "status": strconv.Itoa(e.Status), "detail": e.Detail}
	if e.ScimType != "" {
		body["scimType"] = e.ScimType
	}
	writeJSON(w, e.Status, body)
}

// fail answers err: a scimError as is, anything else as a 500 whose detail
// names no internals.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var se *scimError
	if errors.As(err, &se) {
		writeError(w, se)
		return
	}
	h.opts.Logger.ErrorContext(r.Context(), "scim request failed", "method", r.Method, "path", r.URL.Path, "error", err.Error())
	writeError(w, &scimError{Status: http.StatusInternalServerError, Detail: "internal error"})
}

func decode(r *http.Request, v any) error {
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return badRequest("invalidSyntax", "unreadable body")
	}
	if err := json.Unmarshal(data, v); err != nil {
		return badRequest("invalidSyntax", "malformed JSON: %v", err)
	}
	return nil
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	s := hex.EncodeToString(b[:])
	return s[:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
}

func (h *Handler) stamp() string { return h.opts.Now().UTC().Format(time.RFC3339Nano) }

func nextVersion(v string) string {
	n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(v, `W/"`), `"`))
	return fmt.Sprintf(`W/"%d"`, n+1)
}

func location(r *http.Request, kind, id string) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return fmt.Sprintf("%s://%s%s/%s/%s", scheme, r.Host, Prefix, kind, id)
}

// ---- Users ----

func (h *Handler) loadUser(ctx context.Context, id string) (*User, error) {
	b, err := h.opts.Store.Get(ctx, "User", id)
	if errors.Is(err, errNotFound) {
		return nil, notFound("User", id)
	}
	if err != nil {
		return nil, err
	}
	var u User
	if err := json.Unmarshal(b, &u); err != nil {
		return nil, fmt.Errorf("stored user %s: %w", id, err)
	}
	return &u, nil
}

// withGroups fills in the groups a user is a member of (read-only).
func (h *Handler) withGroups(ctx context.Context, users []*User) error {
	groups, err := h.allGroups(ctx)
	if err != nil {
		return err
	}
	byID := map[string]*User{}
	for _, u := range users {
		u.Groups = nil
		byID[u.ID] = u
	}
	for _, g := range groups {
		for _, m := range g.Members {
			if u := byID[m.Value]; u != nil {
				u.Groups = append(u.Groups, Ref{Value: g.ID, Display: g.DisplayName})
			}
		}
	}
	return nil
}

// userInput reads a User body and checks it. A user without "active" is
// active (the attribute is optional; a provisioned user is active).
func userInput(r *http.Request) (*User, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, badRequest("invalidSyntax", "unreadable body")
	}
	var u User
	if err := json.Unmarshal(body, &u); err != nil {
		return nil, badRequest("invalidSyntax", "malformed JSON: %v", err)
	}
	if strings.TrimSpace(u.UserName) == "" {
		return nil, badRequest("invalidValue", "userName is required")
	}
	var present map[string]json.RawMessage
	_ = json.Unmarshal(body, &present)
	if _, ok := present["active"]; !ok {
		u.Active = true
	}
	return &u, nil
}

func (h *Handler) createUser(w http.ResponseWriter, r *http.Request) {
	in, err := userInput(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	u := *in
	now := h.stamp()
	u.ID, u.Schemas, u.Groups = newID(), []string{SchemaUser}, nil
	u.Meta = Meta{ResourceType: "User", Created: now, LastModified: now, Location: location(r, "Users", u.ID), Version: `W/"1"`}
	doc, _ := json.Marshal(&u)
	if err := h.opts.Store.Create(r.Context(), "User", u.ID, u.UserName, doc); err != nil {
		if errors.Is(err, errTaken) {
			h.fail(w, r, &scimError{Status: http.StatusConflict, ScimType: "uniqueness", Detail: fmt.Sprintf("userName %q exists", u.UserName)})
			return
		}
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Location", u.Meta.Location)
	w.Header().Set("ETag", u.Meta.Version)
	writeJSON(w, http.StatusCreated, &u)
}

func (h *Handler) getUser(w http.ResponseWriter, r *http.Request) {
	u, err := h.loadUser(r.Context(), r.PathValue("id"))
	if err == nil {
		err = h.withGroups(r.Context(), []*User{u})
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("ETag", u.Meta.Version)
	writeJSON(w, http.StatusOK, u)
}

func (h *Handler) listUsers(w http.ResponseWriter, r *http.Request) {
	f, err := parseFilter(r.URL.Query().Get("filter"), "userName", "externalId", "id", "displayName", "emails.value", "emails")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	docs, err := h.opts.Store.List(r.Context(), "User")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var users []*User
	for _, d := range docs {
		var u User
		if json.Unmarshal(d, &u) != nil {
			continue
		}
		if f.matchUser(&u) {
			users = append(users, &u)
		}
	}
	page, total, start, err := h.page(r, len(users))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	users = users[page[0]:page[1]]
	if err := h.withGroups(r.Context(), users); err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, listResponse(total, start, users))
}

func (h *Handler) replaceUser(w http.ResponseWriter, r *http.Request) {
	in, err := userInput(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	id := r.PathValue("id")
	var out User
	err = h.opts.Store.Update(r.Context(), "User", id, func(cur []byte) ([]byte, string, error) {
		var u User
		if err := json.Unmarshal(cur, &u); err != nil {
			return nil, "", err
		}
		next := *in
		next.ID, next.Schemas, next.Groups = id, []string{SchemaUser}, nil
		next.Meta = u.Meta
		next.Meta.LastModified, next.Meta.Version = h.stamp(), nextVersion(u.Meta.Version)
		out = next
		doc, err := json.Marshal(&next)
		return doc, next.UserName, err
	})
	h.userWritten(w, r, id, &out, err)
}

func (h *Handler) userWritten(w http.ResponseWriter, r *http.Request, id string, u *User, err error) {
	if err == nil && !h.applyAccountState(w, r, u, false) {
		return
	}
	if err == nil && !h.provision(w, r, id) {
		return
	}
	switch {
	case errors.Is(err, errNotFound):
		err = notFound("User", id)
	case errors.Is(err, errTaken):
		err = &scimError{Status: http.StatusConflict, ScimType: "uniqueness", Detail: "userName exists"}
	}
	if err == nil {
		err = h.withGroups(r.Context(), []*User{u})
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("ETag", u.Meta.Version)
	writeJSON(w, http.StatusOK, u)
}

func (h *Handler) patchUser(w http.ResponseWriter, r *http.Request) {
	ops, err := patchInput(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	id := r.PathValue("id")
	var out User
	err = h.opts.Store.Update(r.Context(), "User", id, func(cur []byte) ([]byte, string, error) {
		var u User
		if err := json.Unmarshal(cur, &u); err != nil {
			return nil, "", err
		}
		before, _ := json.Marshal(&u)
		for _, op := range ops {
			if err := applyUserOp(&u, op); err != nil {
				return nil, "", err
			}
		}
		if after, _ := json.Marshal(&u); string(after) != string(before) {
			// Only a real change moves the version: the same PATCH
			// retried changes nothing twice.
			u.Meta.LastModified, u.Meta.Version = h.stamp(), nextVersion(u.Meta.Version)
		}
		out = u
		doc, err := json.Marshal(&u)
		return doc, u.UserName, err
	})
	h.userWritten(w, r, id, &out, err)
}

func (h *Handler) deleteUser(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	u, err := h.loadUser(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	// Deactivated before anything is deleted, so a retry still finds the
	// user (and its email) when this fails.
	if !h.applyAccountState(w, r, u, true) {
		return
	}
	// Out of every group first, then the user.
	groups, err := h.allGroups(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	for _, g := range groups {
		if !hasMember(g, id) {
			continue
		}
		_, err := h.updateGroup(r.Context(), g.ID, func(g *Group) error {
			g.Members = removeMember(g.Members, id)
			return nil
		})
		if err != nil && !errors.Is(err, errNotFound) {
			h.fail(w, r, err)
			return
		}
	}
	if err := h.opts.Store.Delete(r.Context(), "User", id); err != nil {
		if errors.Is(err, errNotFound) {
			err = notFound("User", id)
		}
		h.fail(w, r, err)
		return
	}
	if !h.provision(w, r, id) {
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// ---- Groups ----

func (h *Handler) allGroups(ctx context.Context) ([]*Group, error) {
	docs, err := h.opts.Store.List(ctx, "Group")
	if err != nil {
		return nil, err
	}
	out := make([]*Group, 0, len(docs))
	for _, d := range docs {
		var g Group
		if json.Unmarshal(d, &g) == nil {
			out = append(out, &g)
		}
	}
	return out, nil
}

func (h *Handler) loadGroup(ctx context.Context, id string) (*Group, error) {
	b, err := h.opts.Store.Get(ctx, "Group", id)
	if errors.Is(err, errNotFound) {
		return nil, notFound("Group", id)
	}
	if err != nil {
		return nil, err
	}
	var g Group
	if err := json.Unmarshal(b, &g); err != nil {
		return nil, fmt.Errorf("stored group %s: %w", id, err)
	}
	return &g, nil
}

// checkMembers refuses members that are not users, and fills in display.
func (h *Handler) checkMembers(ctx context.Context, ms []Ref) ([]Ref, error) {
	out := make([]Ref, 0, len(ms))
	seen := map[string]bool{}
	for _, m := range ms {
		if seen[m.Value] {
			continue
		}
		u, err := h.loadUser(ctx, m.Value)
		if err != nil {
			var se *scimError
			if errors.As(err, &se) && se.Status == http.StatusNotFound {
				return nil, badRequest("invalidValue", "member %q is not a user", m.Value)
			}
			return nil, err
		}
		seen[m.Value] = true
		out = append(out, Ref{Value: u.ID, Display: u.UserName})
	}
	return out, nil
}

func (h *Handler) createGroup(w http.ResponseWriter, r *http.Request) {
	var g Group
	if err := decode(r, &g); err != nil {
		h.fail(w, r, err)
		return
	}
	if strings.TrimSpace(g.DisplayName) == "" {
		h.fail(w, r, badRequest("invalidValue", "displayName is required"))
		return
	}
	members, err := h.checkMembers(r.Context(), g.Members)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	now := h.stamp()
	g.ID, g.Schemas, g.Members = newID(), []string{SchemaGroup}, members
	g.Meta = Meta{ResourceType: "Group", Created: now, LastModified: now, Location: location(r, "Groups", g.ID), Version: `W/"1"`}
	doc, _ := json.Marshal(&g)
	if err := h.opts.Store.Create(r.Context(), "Group", g.ID, g.DisplayName, doc); err != nil {
		if errors.Is(err, errTaken) {
			err = &scimError{Status: http.StatusConflict, ScimType: "uniqueness", Detail: fmt.Sprintf("group %q exists", g.DisplayName)}
		}
		h.fail(w, r, err)
		return
	}
	if !h.provision(w, r, refIDs(g.Members)...) {
		return
	}
	w.Header().Set("Location", g.Meta.Location)
	w.Header().Set("ETag", g.Meta.Version)
	writeJSON(w, http.StatusCreated, &g)
}

func excludesMembers(r *http.Request) bool {
	q := r.URL.Query()
	if strings.Contains(strings.ToLower(q.Get("excludedAttributes")), "members") {
		return true
	}
	if a := q.Get("attributes"); a != "" && !strings.Contains(strings.ToLower(a), "members") {
		return true
	}
	return false
}

func (h *Handler) getGroup(w http.ResponseWriter, r *http.Request) {
	g, err := h.loadGroup(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if excludesMembers(r) {
		g.Members = nil
	}
	w.Header().Set("ETag", g.Meta.Version)
	writeJSON(w, http.StatusOK, g)
}

func (h *Handler) listGroups(w http.ResponseWriter, r *http.Request) {
	f, err := parseFilter(r.URL.Query().Get("filter"), "displayName", "externalId", "id")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	all, err := h.allGroups(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var groups []*Group
	for _, g := range all {
		if f.matchGroup(g) {
			groups = append(groups, g)
		}
	}
	page, total, start, err := h.page(r, len(groups))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	groups = groups[page[0]:page[1]]
	if excludesMembers(r) {
		for _, g := range groups {
			g.Members = nil
		}
	}
	writeJSON(w, http.StatusOK, listResponse(total, start, groups))
}

// updateGroup changes a group atomically through fn, moving its version
// only when something changed.
func (h *Handler) updateGroup(ctx context.Context, id string, fn func(*Group) error) ([]string, error) {
	var touched []string // members before and after
	err := h.opts.Store.Update(ctx, "Group", id, func(cur []byte) ([]byte, string, error) {
		var g Group
		if err := json.Unmarshal(cur, &g); err != nil {
			return nil, "", err
		}
		before, _ := json.Marshal(&g)
		touched = append(touched[:0], refIDs(g.Members)...)
		if err := fn(&g); err != nil {
			return nil, "", err
		}
		touched = append(touched, refIDs(g.Members)...)
		if after, _ := json.Marshal(&g); string(after) != string(before) {
			g.Meta.LastModified, g.Meta.Version = h.stamp(), nextVersion(g.Meta.Version)
		}
		doc, err := json.Marshal(&g)
		return doc, g.DisplayName, err
	})
	return touched, err
}

func (h *Handler) groupWritten(w http.ResponseWriter, r *http.Request, id string, err error) {
	switch {
	case errors.Is(err, errNotFound):
		err = notFound("Group", id)
	case errors.Is(err, errTaken):
		err = &scimError{Status: http.StatusConflict, ScimType: "uniqueness", Detail: "displayName exists"}
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.getGroup(w, r)
}

func (h *Handler) replaceGroup(w http.ResponseWriter, r *http.Request) {
	var in Group
	if err := decode(r, &in); err != nil {
		h.fail(w, r, err)
		return
	}
	if strings.TrimSpace(in.DisplayName) == "" {
		h.fail(w, r, badRequest("invalidValue", "displayName is required"))
		return
	}
	members, err := h.checkMembers(r.Context(), in.Members)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	id := r.PathValue("id")
	touched, err := h.updateGroup(r.Context(), id, func(g *Group) error {
		g.DisplayName, g.ExternalID, g.Members = in.DisplayName, in.ExternalID, members
		return nil
	})
	if err == nil && !h.provision(w, r, touched...) {
		return
	}
	h.groupWritten(w, r, id, err)
}

func (h *Handler) patchGroup(w http.ResponseWriter, r *http.Request) {
	ops, err := patchInput(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	// Members named by add/replace must be users: checked before the
	// transaction, which must not call the store.
	for i := range ops {
		if ops[i].members != nil && ops[i].op != "remove" {
			if ops[i].members, err = h.checkMembers(r.Context(), ops[i].members); err != nil {
				h.fail(w, r, err)
				return
			}
		}
	}
	id := r.PathValue("id")
	touched, err := h.updateGroup(r.Context(), id, func(g *Group) error {
		for _, op := range ops {
			if err := applyGroupOp(g, op); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil && !h.provision(w, r, touched...) {
		return
	}
	if err == nil && r.URL.Query().Get("attributes") == "" {
		// RFC 7644 §3.5.2: 204 when the body is not asked for (Entra and
		// Okta accept both).
		w.WriteHeader(http.StatusNoContent)
		return
	}
	h.groupWritten(w, r, id, err)
}

func (h *Handler) deleteGroup(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	g, err := h.loadGroup(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.opts.Store.Delete(r.Context(), "Group", id); err != nil {
		if errors.Is(err, errNotFound) {
			err = notFound("Group", id)
		}
		h.fail(w, r, err)
		return
	}
	if !h.provision(w, r, refIDs(g.Members)...) {
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func refIDs(ms []Ref) []string {
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.Value)
	}
	return out
}

func hasMember(g *Group, id string) bool {
	for _, m := range g.Members {
		if m.Value == id {
			return true
		}
	}
	return false
}

func removeMember(ms []Ref, id string) []Ref {
	out := ms[:0:0]
	for _, m := range ms {
		if m.Value != id {
			out = append(out, m)
		}
	}
	return out
}

// ---- lists ----

// page reads startIndex (1-based) and count; it returns the slice bounds,
// the total and the start index.
func (h *Handler) page(r *http.Request, total int) ([2]int, int, int, error) {
	q := r.URL.Query()
	start, count := 1, h.opts.MaxPageSize
	if s := q.Get("startIndex"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return [2]int{}, 0, 0, badRequest("invalidValue", "startIndex must be an integer")
		}
		if n > 1 {
			start = n
		}
	}
	if s := q.Get("count"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return [2]int{}, 0, 0, badRequest("invalidValue", "count must be an integer")
		}
		count = max(0, min(n, h.opts.MaxPageSize))
	}
	lo := min(start-1, total)
	hi := min(lo+count, total)
	return [2]int{lo, hi}, total, start, nil
}

func listResponse[T any](total, start int, items []T) map[string]any {
	if items == nil {
		items = []T{}
	}
	return map[string]any{"schemas": []string{SchemaListResponse}, "totalResults": total, "startIndex": start,
		"itemsPerPage": len(items), "Resources": items}
}
