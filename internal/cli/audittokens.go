package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/labels"
)

func (c *cli) auditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "The control plane's audit trail",
	}
	cmd.AddCommand(c.auditEventsCmd())
	return cmd
}

// parseSince reads "24h" (that long ago) or an RFC 3339 time.
func parseSince(s string, now time.Time) (*timestamppb.Timestamp, error) {
	if s == "" {
		return nil, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return timestamppb.New(now.Add(-d)), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return timestamppb.New(t), nil
	}
	return nil, usageErr(fmt.Sprintf("--since %q: want a duration (24h) or an RFC 3339 time", s))
}

func (c *cli) auditEventsCmd() *cobra.Command {
	var principal, method, ws, since string
	var limit int
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Mutating calls on agencyd, newest first (admin only)",
		Args:  exactArgs(0, "no arguments"),
		RunE: c.action(func(cmd *cobra.Command, _ []string) error {
			start, err := parseSince(since, time.Now())
			if err != nil {
				return err
			}
			if limit < 0 {
				return usageErr("--limit must not be negative")
			}
			if ws != "" {
				if ws, err = workspaceName(ws); err != nil {
					return err
				}
			}
			if method != "" && !strings.HasPrefix(method, "/") {
				method = "/" + method
			}
			conn, err := c.client()
			if err != nil {
				return err
			}
			api := agencyv1.NewAuditServiceClient(conn)
			var all []*agencyv1.AuditEvent
			token := ""
			for {
				size := 1000
				if limit > 0 {
					size = min(size, limit-len(all))
				}
				ctx, cancel := c.call(cmd.Context())
				page, err := api.ListEvents(ctx, &agencyv1.ListEventsRequest{PageSize: int32(size), PageToken: token,
					Principal: principal, Method: method, Workspace: ws, StartTime: start})
				cancel()
				if err != nil {
					return err
				}
				all = append(all, page.GetEvents()...)
				token = page.GetNextPageToken()
				if token == "" || (limit > 0 && len(all) >= limit) {
					break
				}
			}
			if c.out.machine() {
				return c.out.proto(&agencyv1.ListEventsResponse{Events: all})
			}
			rows := [][]string{}
			for _, e := range all {
				code := e.GetCode()
				if code == "" {
					code = "started"
				} else if code != "OK" {
					code = c.out.red(code)
				}
				wss := make([]string, 0, len(e.GetWorkspaces()))
				for _, w := range e.GetWorkspaces() {
					wss = append(wss, shortName(w))
				}
				target := strings.Join(wss, ",")
				if len(target) > 40 {
					target = fmt.Sprintf("%s… (%d)", target[:37], len(wss))
				}
				rows = append(rows, []string{tsString(e.GetTime()), e.GetPrincipal(), shortMethod(e.GetMethod()), code, target, e.GetRequestId()})
			}
			c.out.table([]string{"time", "principal", "method", "code", "workspaces", "request id"}, rows)
			return nil
		}),
	}
	cmd.Flags().StringVar(&principal, "principal", "", "only this caller (tokens/ID or cert:IDENTITY)")
	cmd.Flags().StringVar(&method, "method", "", "only this method, e.g. agency.v1.MemberService/InviteMember")
	cmd.Flags().StringVarP(&ws, "workspace", "w", "", "only calls that targeted this workspace")
	cmd.Flags().StringVar(&since, "since", "", "only events after this: a duration (24h) or an RFC 3339 time")
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many (0: all)")
	return cmd
}

func (c *cli) tokensCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "tokens",
		Aliases: []string{"token"},
		Short:   "Control-plane bearer tokens (admin only)",
	}
	cmd.AddCommand(c.tokensCreateCmd(), c.tokensListCmd(), c.tokensRevokeCmd())
	return cmd
}

func roleOf(s string) (agencyv1.Role, error) {
	v, ok := agencyv1.Role_value["ROLE_"+strings.ToUpper(s)]
	if !ok || v == 0 {
		return 0, usageErr(fmt.Sprintf("--role %q: want admin, manager, sdr or viewer", s))
	}
	return agencyv1.Role(v), nil
}

func tokenRoleName(r agencyv1.Role) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "ROLE_"))
}

func (c *cli) tokensCreateCmd() *cobra.Command {
	var role, scope, description string
	var expires time.Duration
	cmd := &cobra.Command{
		Use:   "create --role ROLE [--scope SELECTOR] [--description TEXT] [--expires 720h]",
		Short: "Create a token; its secret is shown once",
		Args:  exactArgs(0, "no arguments"),
		RunE: c.action(func(cmd *cobra.Command, _ []string) error {
			r, err := roleOf(role)
			if err != nil {
				return err
			}
			if scope != "" {
				if _, err := labels.Parse(scope); err != nil {
					return usageErr(fmt.Sprintf("--scope %q: %v", scope, err))
				}
			}
			if expires < 0 {
				return usageErr("--expires must not be negative")
			}
			tok := &agencyv1.Token{Role: r, WorkspaceScope: scope, Description: description}
			if expires > 0 {
				tok.ExpireTime = timestamppb.New(time.Now().Add(expires))
			}
			conn, err := c.client()
			if err != nil {
				return err
			}
			ctx, cancel := c.call(cmd.Context())
			defer cancel()
			resp, err := agencyv1.NewTokenServiceClient(conn).CreateToken(ctx, &agencyv1.CreateTokenRequest{Token: tok, RequestId: newRequestID()})
			if err != nil {
				return err
			}
			if c.out.machine() {
				return c.out.proto(resp)
			}
			c.tokensTable([]*agencyv1.Token{resp.GetToken()})
			fmt.Fprintf(c.env.Out, "\nsecret (shown once): %s\n", resp.GetSecret())
			return nil
		}),
	}
	cmd.Flags().StringVar(&role, "role", "", "admin, manager, sdr or viewer")
	cmd.Flags().StringVar(&scope, "scope", "", "label selector of the workspaces it may see (empty: all)")
	cmd.Flags().StringVar(&description, "description", "", "what the token is for")
	cmd.Flags().DurationVar(&expires, "expires", 0, "lifetime, e.g. 720h (0: never)")
	_ = cmd.RegisterFlagCompletionFunc("role", cobra.FixedCompletions([]string{"admin", "manager", "sdr", "viewer"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func (c *cli) tokensTable(list []*agencyv1.Token) {
	rows := [][]string{}
	for _, t := range list {
		state := "active"
		switch {
		case t.GetRevokeTime() != nil:
			state = "revoked"
		case t.GetExpireTime() != nil && t.GetExpireTime().AsTime().Before(time.Now()):
			state = "expired"
		}
		rows = append(rows, []string{t.GetName(), tokenRoleName(t.GetRole()), t.GetWorkspaceScope(), state, tsString(t.GetExpireTime()), t.GetDescription()})
	}
	c.out.table([]string{"name", "role", "scope", "state", "expires", "description"}, rows)
}

func (c *cli) tokensListCmd() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List tokens (never their secrets)",
		Args:    exactArgs(0, "no arguments"),
		RunE: c.action(func(cmd *cobra.Command, _ []string) error {
			conn, err := c.client()
			if err != nil {
				return err
			}
			api := agencyv1.NewTokenServiceClient(conn)
			var list []*agencyv1.Token
			token := ""
			for {
				ctx, cancel := c.call(cmd.Context())
				page, err := api.ListTokens(ctx, &agencyv1.ListTokensRequest{PageSize: 1000, PageToken: token, ShowInactive: all})
				cancel()
				if err != nil {
					return err
				}
				list = append(list, page.GetTokens()...)
				if token = page.GetNextPageToken(); token == "" {
					break
				}
			}
			if c.out.machine() {
				return c.out.proto(&agencyv1.ListTokensResponse{Tokens: list})
			}
			c.tokensTable(list)
			return nil
		}),
	}
	cmd.Flags().BoolVar(&all, "all", false, "include revoked and expired tokens")
	return cmd
}

func (c *cli) tokensRevokeCmd() *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke a token at once",
		Args:  exactArgs(1, "a token NAME"),
		RunE: c.action(func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if !strings.HasPrefix(name, "tokens/") {
				name = "tokens/" + name
			}
			if err := c.confirm(fmt.Sprintf("Revoke %s?", name), yes); err != nil {
				return err
			}
			conn, err := c.client()
			if err != nil {
				return err
			}
			ctx, cancel := c.call(cmd.Context())
			defer cancel()
			t, err := agencyv1.NewTokenServiceClient(conn).RevokeToken(ctx, &agencyv1.RevokeTokenRequest{Name: name, RequestId: newRequestID()})
			if err != nil {
				return err
			}
			if c.out.machine() {
				return c.out.proto(t)
			}
			c.out.info("revoked %s", t.GetName())
			return nil
		}),
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}
