package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/instantly"
)

func (c *cli) tagsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "tags",
		Aliases: []string{"tag"},
		Short:   "Instantly custom tags: list one workspace's, ensure or remove one everywhere",
	}
	cmd.AddCommand(c.tagsListCmd(), c.tagsEnsureCmd(), c.tagsRmCmd())
	return cmd
}

func (c *cli) tagsListCmd() *cobra.Command {
	var ws, search string
	cmd := &cobra.Command{
		Use:     "list -w NAME",
		Aliases: []string{"ls"},
		Short:   "List a workspace's tags",
		Args:    exactArgs(0, "no arguments (use -w NAME)"),
		RunE: c.action(func(cmd *cobra.Command, _ []string) error {
			if ws == "" {
				return usageErr("-w NAME is required")
			}
			name, err := workspaceName(ws)
			if err != nil {
				return err
			}
			conn, err := c.client()
			if err != nil {
				return err
			}
			api := agencyv1.NewTagServiceClient(conn)
			var all []*agencyv1.Tag
			token := ""
			for {
				ctx, cancel := c.call(cmd.Context())
				page, err := api.ListTags(ctx, &agencyv1.ListTagsRequest{Parent: name, PageSize: 100, PageToken: token, Search: search})
				cancel()
				if err != nil {
					return err
				}
				all = append(all, page.GetTags()...)
				if token = page.GetNextPageToken(); token == "" {
					break
				}
			}
			if c.out.machine() {
				return c.out.proto(&agencyv1.ListTagsResponse{Tags: all})
			}
			rows := [][]string{}
			for _, t := range all {
				rows = append(rows, []string{t.GetId(), t.GetLabel(), t.GetDescription()})
			}
			c.out.table([]string{"id", "label", "description"}, rows)
			return nil
		}),
	}
	cmd.Flags().StringVarP(&ws, "workspace", "w", "", "workspace NAME")
	cmd.Flags().StringVar(&search, "search", "", "only labels containing this")
	_ = cmd.RegisterFlagCompletionFunc("workspace", c.completeWorkspaces)
	return cmd
}

func (c *cli) tagsEnsureCmd() *cobra.Command {
	var sel selectorFlags
	var description string
	var dryRun, lr, detach bool
	cmd := &cobra.Command{
		Use:   "ensure LABEL (-w NAME | -l SELECTOR | --all)",
		Short: "Make sure a tag exists everywhere (created where missing, reused where present)",
		Args:  exactArgs(1, "the tag LABEL"),
		RunE: c.action(func(cmd *cobra.Command, args []string) error {
			label := strings.TrimSpace(args[0])
			if label == "" {
				return usageErr("the tag label is blank")
			}
			selector, api, err := c.fanoutOver(&sel)
			if err != nil {
				return err
			}
			return c.runFanoutWrite(cmd.Context(), lr, detach, "ensuring tag", func(ctx context.Context, lr bool) (*agencyv1.FanoutResponse, error) {
				return api.EnsureTagEverywhere(ctx, &agencyv1.EnsureTagEverywhereRequest{Selector: selector, Label: label, Description: description,
					DryRun: dryRun, LongRunning: lr, RequestId: newRequestID()})
			})
		}),
	}
	sel.register(cmd, c)
	cmd.Flags().StringVar(&description, "description", "", "description of newly created tags")
	addWriteFlags(cmd, &dryRun, &lr, &detach)
	return cmd
}

func (c *cli) tagsRmCmd() *cobra.Command {
	var sel selectorFlags
	var yes, dryRun, lr, detach bool
	cmd := &cobra.Command{
		Use:     "rm LABEL (-w NAME | -l SELECTOR | --all)",
		Aliases: []string{"delete"},
		Short:   "Delete the tag with this label wherever it exists",
		Args:    exactArgs(1, "the tag LABEL"),
		RunE: c.action(func(cmd *cobra.Command, args []string) error {
			label := strings.TrimSpace(args[0])
			if label == "" {
				return usageErr("the tag label is blank")
			}
			selector, err := sel.proto()
			if err != nil {
				return err
			}
			if !dryRun {
				if err := c.confirm(fmt.Sprintf("Delete tag %q in %s?", label, sel.describe()), yes); err != nil {
					return err
				}
			}
			api, err := c.fanoutAPI()
			if err != nil {
				return err
			}
			return c.runFanoutWrite(cmd.Context(), lr, detach, "deleting tag", func(ctx context.Context, lr bool) (*agencyv1.FanoutResponse, error) {
				return api.DeleteTagEverywhere(ctx, &agencyv1.DeleteTagEverywhereRequest{Selector: selector, Label: label,
					DryRun: dryRun, LongRunning: lr, RequestId: newRequestID()})
			})
		}),
	}
	sel.register(cmd, c)
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	addWriteFlags(cmd, &dryRun, &lr, &detach)
	return cmd
}

func (c *cli) keysCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "keys",
		Aliases: []string{"key", "apikeys"},
		Short:   "Instantly API keys: list, create from presets, revoke, audit",
	}
	cmd.AddCommand(c.keysListCmd(), c.keysCreateCmd(), c.keysRevokeCmd(), c.keysAuditCmd())
	return cmd
}

func (c *cli) keysListCmd() *cobra.Command {
	var ws string
	cmd := &cobra.Command{
		Use:     "list -w NAME",
		Aliases: []string{"ls"},
		Short:   "List a workspace's API keys (never their secrets)",
		Args:    exactArgs(0, "no arguments (use -w NAME)"),
		RunE: c.action(func(cmd *cobra.Command, _ []string) error {
			if ws == "" {
				return usageErr("-w NAME is required")
			}
			name, err := workspaceName(ws)
			if err != nil {
				return err
			}
			conn, err := c.client()
			if err != nil {
				return err
			}
			api := agencyv1.NewApiKeyServiceClient(conn)
			var all []*agencyv1.ApiKey
			token := ""
			for {
				ctx, cancel := c.call(cmd.Context())
				page, err := api.ListApiKeys(ctx, &agencyv1.ListApiKeysRequest{Parent: name, PageSize: 100, PageToken: token})
				cancel()
				if err != nil {
					return err
				}
				all = append(all, page.GetApiKeys()...)
				if token = page.GetNextPageToken(); token == "" {
					break
				}
			}
			if c.out.machine() {
				return c.out.proto(&agencyv1.ListApiKeysResponse{ApiKeys: all})
			}
			c.keysTable("", all)
			return nil
		}),
	}
	cmd.Flags().StringVarP(&ws, "workspace", "w", "", "workspace NAME")
	_ = cmd.RegisterFlagCompletionFunc("workspace", c.completeWorkspaces)
	return cmd
}

func (c *cli) keyRow(ws string, k *agencyv1.ApiKey) []string {
	var flags []string
	if k.GetOverPrivileged() {
		flags = append(flags, c.out.red("over-privileged"))
	}
	if k.GetIsStoredCredential() {
		flags = append(flags, "stored credential")
	}
	row := []string{k.GetId(), k.GetDisplayName(), strings.Join(k.GetScopes(), ","), strings.Join(flags, ", ")}
	if ws != "" {
		row = append([]string{shortName(ws)}, row...)
	}
	return row
}

func (c *cli) keysTable(ws string, keys []*agencyv1.ApiKey) {
	rows := [][]string{}
	for _, k := range keys {
		rows = append(rows, c.keyRow(ws, k))
	}
	c.out.table([]string{"id", "name", "scopes", "flags"}, rows)
}

func presetFlag(s string) (agencyv1.ApiKeyPreset, error) {
	switch strings.ToLower(s) {
	case "manager":
		return agencyv1.ApiKeyPreset_API_KEY_PRESET_MANAGER, nil
	case "sdr":
		return agencyv1.ApiKeyPreset_API_KEY_PRESET_SDR, nil
	case "viewer":
		return agencyv1.ApiKeyPreset_API_KEY_PRESET_VIEWER, nil
	}
	return 0, usageErr(fmt.Sprintf("--preset %q: want manager, sdr or viewer", s))
}

func (c *cli) keysCreateCmd() *cobra.Command {
	var sel selectorFlags
	var preset, scopes string
	var store, lr, detach bool
	cmd := &cobra.Command{
		Use:   "create NAME (--preset manager|sdr|viewer | --scopes a,b) (-w NAME | -l SELECTOR | --all)",
		Short: "Create an API key; its secret is shown once",
		Args:  exactArgs(1, "the key's NAME"),
		RunE: c.action(func(cmd *cobra.Command, args []string) error {
			display := strings.TrimSpace(args[0])
			if display == "" {
				return usageErr("the key name is blank")
			}
			var p agencyv1.ApiKeyPreset
			var err error
			if preset != "" {
				if p, err = presetFlag(preset); err != nil {
					return err
				}
			}
			var sc []string
			for s := range strings.SplitSeq(scopes, ",") {
				if s = strings.TrimSpace(s); s == "" {
					continue
				}
				if !instantly.ValidScope(s) {
					return usageErr(fmt.Sprintf("--scopes: %q is not an Instantly scope (e.g. campaigns:read)", s))
				}
				sc = append(sc, s)
			}
			if (p == 0) == (len(sc) == 0) {
				return usageErr("give exactly one of --preset and --scopes")
			}
			ws, err := sel.single()
			if err != nil {
				return err
			}
			if ws != "" && !lr {
				conn, err := c.client()
				if err != nil {
					return err
				}
				ctx, cancel := c.call(cmd.Context())
				defer cancel()
				resp, err := agencyv1.NewApiKeyServiceClient(conn).CreateApiKey(ctx, &agencyv1.CreateApiKeyRequest{Parent: ws, DisplayName: display,
					Scopes: sc, Preset: p, StoreAsCredential: store, RequestId: newRequestID()})
				if err != nil {
					return err
				}
				if c.out.machine() {
					return c.out.proto(resp)
				}
				c.keysTable(ws, []*agencyv1.ApiKey{resp.GetApiKey()})
				if resp.GetSecret() != "" {
					fmt.Fprintf(c.env.Out, "\nsecret (shown once): %s\n", resp.GetSecret())
				}
				return nil
			}
			if len(sc) > 0 || store {
				return usageErr("across workspaces, keys are created from --preset only")
			}
			selector, api, err := c.fanoutOver(&sel)
			if err != nil {
				return err
			}
			return c.runFanoutWrite(cmd.Context(), lr, detach, "creating keys", func(ctx context.Context, lr bool) (*agencyv1.FanoutResponse, error) {
				return api.CreateApiKeyEverywhere(ctx, &agencyv1.CreateApiKeyEverywhereRequest{Selector: selector, DisplayName: display, Preset: p,
					LongRunning: lr, RequestId: newRequestID()})
			})
		}),
	}
	sel.register(cmd, c)
	cmd.Flags().StringVar(&preset, "preset", "", "manager, sdr or viewer (the access matrix)")
	cmd.Flags().StringVar(&scopes, "scopes", "", "explicit Instantly scopes, comma-separated (one workspace only)")
	cmd.Flags().BoolVar(&store, "store-as-credential", false, "make the new key the workspace's stored credential (one workspace only)")
	cmd.Flags().BoolVar(&lr, "long-running", false, "run as an operation and follow it with a progress bar")
	cmd.Flags().BoolVar(&detach, "detach", false, "with --long-running: print the operation's name and return")
	return cmd
}

func (c *cli) keysRevokeCmd() *cobra.Command {
	var ws string
	var yes bool
	cmd := &cobra.Command{
		Use:   "revoke KEY_ID -w NAME",
		Short: "Revoke (delete) an API key",
		Args:  exactArgs(1, "the key's id"),
		RunE: c.action(func(cmd *cobra.Command, args []string) error {
			if ws == "" {
				return usageErr("-w NAME is required")
			}
			name, err := workspaceName(ws)
			if err != nil {
				return err
			}
			if err := c.confirm(fmt.Sprintf("Revoke key %s of %s?", args[0], name), yes); err != nil {
				return err
			}
			conn, err := c.client()
			if err != nil {
				return err
			}
			ctx, cancel := c.call(cmd.Context())
			defer cancel()
			k, err := agencyv1.NewApiKeyServiceClient(conn).RevokeApiKey(ctx, &agencyv1.RevokeApiKeyRequest{Name: name + "/apiKeys/" + args[0], RequestId: newRequestID()})
			if err != nil {
				return err
			}
			if c.out.machine() {
				return c.out.proto(k)
			}
			c.out.info("revoked %s (%s)", k.GetName(), k.GetDisplayName())
			return nil
		}),
	}
	cmd.Flags().StringVarP(&ws, "workspace", "w", "", "workspace NAME")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

func (c *cli) keysAuditCmd() *cobra.Command {
	var sel selectorFlags
	cmd := &cobra.Command{
		Use:   "audit [-l SELECTOR | -w NAME | --all]",
		Short: "Every key of every workspace, over-privileged ones (all:all, all:update) flagged",
		Args:  exactArgs(0, "no arguments"),
		RunE: c.action(func(cmd *cobra.Command, _ []string) error {
			if !sel.set() {
				sel.all = true
			}
			selector, api, err := c.fanoutOver(&sel)
			if err != nil {
				return err
			}
			resp, err := c.fanoutRead(cmd.Context(), "auditing keys", func(ctx context.Context, lr bool) (*agencyv1.FanoutResponse, error) {
				return api.AuditApiKeys(ctx, &agencyv1.AuditApiKeysRequest{Selector: selector, LongRunning: lr})
			})
			if err != nil {
				return err
			}
			if c.out.machine() {
				if err := c.out.proto(resp); err != nil {
					return err
				}
				return c.failedWorkspaces(resp.GetResults())
			}
			rows := [][]string{}
			over := 0
			for _, r := range resp.GetResults() {
				for _, k := range r.GetApiKeys().GetApiKeys() {
					rows = append(rows, c.keyRow(r.GetWorkspace(), k))
					if k.GetOverPrivileged() {
						over++
					}
				}
			}
			c.out.table([]string{"workspace", "id", "name", "scopes", "flags"}, rows)
			fmt.Fprintf(c.env.Out, "\n%s, %d over-privileged\n", plural(len(rows), "key"), over)
			c.printUnreadable(resp.GetResults())
			return c.failedWorkspaces(resp.GetResults())
		}),
	}
	sel.register(cmd, c)
	return cmd
}
