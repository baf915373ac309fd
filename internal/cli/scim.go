package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/spf13/cobra"
)

// releasePath is agencyd's HTTP endpoint of paused SCIM removals
// (internal/identity/scim.ReleasePath; not imported to keep the server's
// dependencies out of the binary).
const releasePath = "/v1/scim:releaseRemovals"

// httpJSON calls one of agencyd's HTTP endpoints with the token and
// decodes the JSON answer into out. A non-2xx answer is an error with the
// status and the SCIM error's detail.
func (c *cli) httpJSON(ctx context.Context, method, path string, out any) error {
	ep, err := c.resolveEndpoint()
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: c.timeout}
	if strings.HasPrefix(ep.httpBase, "https://") {
		cfg, err := tlsConfig(ep)
		if err != nil {
			return err
		}
		host := strings.TrimPrefix(ep.httpBase, "https://")
		if h, _, ok := strings.Cut(host, ":"); ok {
			host = h
		}
		cfg.ServerName = host
		client.Transport = &http.Transport{TLSClientConfig: cfg, Proxy: http.ProxyFromEnvironment}
	}
	req, err := http.NewRequestWithContext(ctx, method, ep.httpBase+path, nil)
	if err != nil {
		return usageErr(fmt.Sprintf("HTTP address %s: %v", ep.httpBase, err))
	}
	if ep.token != "" {
		req.Header.Set("Authorization", "Bearer "+ep.token)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "agencyctl")
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return failedErr(fmt.Sprintf("cannot reach %s (HTTP; set --http-addr or AGENCY_HTTP_ADDR when agencyd's --http-addr differs): %v", ep.httpBase, rootCause(err)))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return failedErr(fmt.Sprintf("%s %s: %v", method, ep.httpBase+path, err))
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Detail  string `json:"detail"`
			Message string `json:"message"`
		}
		_ = json.Unmarshal(body, &e)
		msg := e.Detail
		if msg == "" {
			msg = e.Message
		}
		if msg == "" {
			msg = oneLine(string(body))
		}
		switch resp.StatusCode {
		case http.StatusUnauthorized:
			return failedErr(fmt.Sprintf("%s refused the credentials: %s (check --token-file, AGENCY_TOKEN or the context)", ep.httpBase, msg))
		case http.StatusForbidden:
			return failedErr("permission denied: " + msg)
		}
		return failedErr(fmt.Sprintf("%s %s: %s: %s", method, path, resp.Status, msg))
	}
	if err := json.Unmarshal(body, out); err != nil {
		return failedErr(fmt.Sprintf("%s %s: not the expected JSON answer (is %s agencyd's HTTP address?)", method, path, ep.httpBase))
	}
	return nil
}

// rootCause is the innermost error's text ("connect: connection refused").
func rootCause(err error) string {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok || u.Unwrap() == nil {
			return err.Error()
		}
		err = u.Unwrap()
	}
}

func (c *cli) scimCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "scim",
		Short: "SCIM provisioning: removals paused by the hourly cap",
	}
	cmd.AddCommand(c.scimPausedCmd(), c.scimReleaseCmd())
	return cmd
}

func (c *cli) pausedRemovals(ctx context.Context) (int, error) {
	var got struct {
		Paused int `json:"paused"`
	}
	cctx, cancel := c.call(ctx)
	defer cancel()
	if err := c.httpJSON(cctx, http.MethodGet, releasePath, &got); err != nil {
		return 0, err
	}
	return got.Paused, nil
}

func (c *cli) scimPausedCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "paused",
		Short: "Show how many SCIM removals the hourly cap paused (GET /v1/scim:releaseRemovals)",
		Args:  exactArgs(0, "no arguments"),
		RunE: c.action(func(cmd *cobra.Command, _ []string) error {
			n, err := c.pausedRemovals(cmd.Context())
			if err != nil {
				return err
			}
			if c.out.machine() {
				return c.out.doc(map[string]int{"paused": n})
			}
			fmt.Fprintf(c.env.Out, "%s paused (workspaces × people); 'agencyctl scim release' starts them.\n", plural(n, "removal"))
			return nil
		}),
	}
}

func (c *cli) scimReleaseCmd() *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "release",
		Short: "Start every SCIM removal the hourly cap paused (POST /v1/scim:releaseRemovals)",
		Long: `When the identity provider deactivates more people in an hour than
--scim-max-removals-per-hour allows, agencyd pauses the excess. This shows
how many removals wait, asks for confirmation (or --yes; without a terminal
--yes is required) and starts them all, each as an operation
('agencyctl ops list' shows them). Needs an admin token without a scope.

It calls agencyd's HTTP port, not gRPC: --http-addr (or AGENCY_HTTP_ADDR, or
the context's http-addr; default the --addr host on port 8080).`,
		Args: exactArgs(0, "no arguments"),
		RunE: c.action(func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			n, err := c.pausedRemovals(ctx)
			if err != nil {
				return err
			}
			if n == 0 {
				if c.out.machine() {
					return c.out.doc(map[string]int{"released": 0})
				}
				fmt.Fprintln(c.env.Out, "No removal is paused.")
				return nil
			}
			if err := c.confirm(fmt.Sprintf("Start %s paused by the hourly cap?", plural(n, "removal")), yes); err != nil {
				return err
			}
			var got struct {
				Released int `json:"released"`
			}
			cctx, cancel := c.call(ctx)
			defer cancel()
			if err := c.httpJSON(cctx, http.MethodPost, releasePath, &got); err != nil {
				return err
			}
			if c.out.machine() {
				return c.out.doc(map[string]int{"released": got.Released})
			}
			fmt.Fprintf(c.env.Out, "Released %s; they run as operations: agencyctl ops list\n", plural(got.Released, "removal"))
			return nil
		}),
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}
