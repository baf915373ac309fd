package cli

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/labels"
	"github.com/agencyplane/agencyplane/internal/vault"
)

func (c *cli) workspacesAPI() (agencyv1.WorkspaceServiceClient, error) {
	conn, err := c.client()
	if err != nil {
		return nil, err
	}
	return agencyv1.NewWorkspaceServiceClient(conn), nil
}

func (c *cli) workspacesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "workspaces",
		Aliases: []string{"workspace", "ws"},
		Short:   "Register and manage client workspaces",
	}
	cmd.AddCommand(c.wsListCmd(), c.wsGetCmd(), c.wsAddCmd(), c.wsImportCmd(), c.wsVerifyCmd(),
		c.wsRotateCmd(), c.wsRelabelCmd(), c.wsRmCmd(), c.wsDiscoverCmd())
	return cmd
}

// listWorkspaces pages through every workspace matching filter.
func (c *cli) listWorkspaces(ctx context.Context, filter string) ([]*agencyv1.Workspace, error) {
	api, err := c.workspacesAPI()
	if err != nil {
		return nil, err
	}
	var out []*agencyv1.Workspace
	token := ""
	for {
		cctx, cancel := c.call(ctx)
		page, err := api.ListWorkspaces(cctx, &agencyv1.ListWorkspacesRequest{PageSize: 1000, PageToken: token, Filter: filter})
		cancel()
		if err != nil {
			return nil, err
		}
		out = append(out, page.GetWorkspaces()...)
		if token = page.GetNextPageToken(); token == "" {
			return out, nil
		}
	}
}

func stateName(s agencyv1.Workspace_State) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "STATE_"))
}

func labelString(m map[string]string) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ",")
}

func (c *cli) printWorkspaces(list []*agencyv1.Workspace) error {
	if c.out.machine() {
		return c.out.proto(&agencyv1.ListWorkspacesResponse{Workspaces: list})
	}
	if len(list) == 0 {
		c.out.info("no workspaces")
		return nil
	}
	rows := make([][]string, 0, len(list))
	for _, w := range list {
		state := stateName(w.GetState())
		if w.GetState() != agencyv1.Workspace_STATE_ACTIVE {
			state = c.out.red(state)
		}
		rows = append(rows, []string{shortName(w.GetName()), w.GetDisplayName(), state, labelString(w.GetLabels())})
	}
	c.out.table([]string{"name", "display name", "state", "labels"}, rows)
	return nil
}

func (c *cli) wsListCmd() *cobra.Command {
	var selector string
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List workspaces, optionally by label selector",
		Args:    exactArgs(0, "no arguments (use -l SELECTOR)"),
		RunE: c.action(func(cmd *cobra.Command, _ []string) error {
			if _, err := labels.Parse(selector); err != nil {
				return usageErr(fmt.Sprintf("-l %q: %v", selector, err))
			}
			list, err := c.listWorkspaces(cmd.Context(), selector)
			if err != nil {
				return err
			}
			return c.printWorkspaces(list)
		}),
	}
	cmd.Flags().StringVarP(&selector, "selector", "l", "", "label selector, e.g. team=sdr-west,client!=internal")
	return cmd
}

func tsString(t *timestamppb.Timestamp) string {
	if t == nil {
		return ""
	}
	return t.AsTime().UTC().Format(time.RFC3339)
}

func (c *cli) printWorkspace(w *agencyv1.Workspace) error {
	if c.out.machine() {
		return c.out.proto(w)
	}
	c.out.fields([][2]string{
		{"Name", w.GetName()},
		{"Display name", w.GetDisplayName()},
		{"Labels", labelString(w.GetLabels())},
		{"State", stateName(w.GetState())},
		{"State message", w.GetStateMessage()},
		{"Instantly workspace", strings.TrimSpace(w.GetInstantlyWorkspaceId() + " " + w.GetInstantlyWorkspaceName())},
		{"Credential", w.GetCredentialFingerprint()},
		{"Admin workspace", w.GetAdminWorkspace()},
		{"Last verified", tsString(w.GetLastVerifyTime())},
		{"Created", tsString(w.GetCreateTime())},
		{"Updated", tsString(w.GetUpdateTime())},
	})
	return nil
}

func (c *cli) wsGetCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "get NAME",
		Short:             "Show one workspace",
		Args:              exactArgs(1, "a workspace NAME"),
		ValidArgsFunction: c.completeWorkspaceArgs,
		RunE: c.action(func(cmd *cobra.Command, args []string) error {
			name, err := workspaceName(args[0])
			if err != nil {
				return err
			}
			api, err := c.workspacesAPI()
			if err != nil {
				return err
			}
			ctx, cancel := c.call(cmd.Context())
			defer cancel()
			w, err := api.GetWorkspace(ctx, &agencyv1.GetWorkspaceRequest{Name: name})
			if err != nil {
				return err
			}
			return c.printWorkspace(w)
		}),
	}
}

// readSecretFile reads an API key from a file, or from stdin with "-", so
// it never has to be typed on a command line.
func (c *cli) readSecretFile(flag, path string) (string, error) {
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(io.LimitReader(c.env.In, 4096))
	} else {
		b, err = os.ReadFile(expandHome(path))
	}
	if err != nil {
		return "", usageErr(fmt.Sprintf("%s: %s", flag, pathErr(err)))
	}
	s := strings.TrimSpace(string(b))
	if !apiKeyRE.MatchString(s) {
		return "", usageErr(fmt.Sprintf("%s %s: want one API key of 8-512 printable characters", flag, path))
	}
	return s, nil
}

func (c *cli) wsAddCmd() *cobra.Command {
	var keyFile, display, admin, subID string
	var lbls []string
	cmd := &cobra.Command{
		Use:   "add NAME --api-key-file FILE [--label k=v]...",
		Short: "Register a workspace with its Instantly API key (verified first)",
		Long: `Register a workspace. The key is read from --api-key-file (- for stdin) and
checked against Instantly before anything is stored. With --admin and
--sub-workspace-id, the workspace acts through the admin workspace's key.`,
		Args: exactArgs(1, "the new workspace's NAME"),
		RunE: c.action(func(cmd *cobra.Command, args []string) error {
			name, err := workspaceName(args[0])
			if err != nil {
				return err
			}
			l, err := parseLabelFlags(lbls)
			if err != nil {
				return err
			}
			if display == "" {
				display = shortName(name)
			}
			req := &agencyv1.CreateWorkspaceRequest{WorkspaceId: shortName(name), RequestId: newRequestID(),
				Workspace: &agencyv1.Workspace{DisplayName: display, Labels: l}}
			switch {
			case admin != "" && subID != "":
				an, err := workspaceName(admin)
				if err != nil {
					return err
				}
				req.Workspace.AdminWorkspace, req.SubWorkspaceId = an, subID
			case admin != "" || subID != "":
				return usageErr("--admin and --sub-workspace-id go together")
			case keyFile == "":
				return usageErr("--api-key-file is required (or --admin with --sub-workspace-id)")
			default:
				key, err := c.readSecretFile("--api-key-file", keyFile)
				if err != nil {
					return err
				}
				req.Workspace.ApiKey = &key
			}
			api, err := c.workspacesAPI()
			if err != nil {
				return err
			}
			ctx, cancel := c.call(cmd.Context())
			defer cancel()
			w, err := api.CreateWorkspace(ctx, req)
			if err != nil {
				return err
			}
			return c.printWorkspace(w)
		}),
	}
	cmd.Flags().StringVar(&keyFile, "api-key-file", "", "file with the workspace's Instantly API key (- reads stdin)")
	cmd.Flags().StringVar(&display, "display-name", "", "human-readable name (default: NAME)")
	cmd.Flags().StringArrayVar(&lbls, "label", nil, "label key=value (repeatable)")
	cmd.Flags().StringVar(&admin, "admin", "", "admin workspace whose key acts on this sub workspace")
	cmd.Flags().StringVar(&subID, "sub-workspace-id", "", "Instantly id of the sub workspace (with --admin)")
	return cmd
}

// importResult is what `workspaces import` did with one row.
type importResult struct {
	Workspace   string `json:"workspace"`
	Line        int    `json:"line"`
	Result      string `json:"result"` // created, unchanged, updated, conflict, failed (or would-create, would-update in a dry run)
	Detail      string `json:"detail"`
	Fingerprint string `json:"credentialFingerprint"`
}

func (c *cli) wsImportCmd() *cobra.Command {
	var file string
	var dryRun bool
	var parallel int
	cmd := &cobra.Command{
		Use:   "import --csv FILE",
		Short: "Register workspaces from a CSV (workspace_id, display_name, api_key, labels); safe to re-run",
		Long: `Register every workspace of a CSV file with the columns workspace_id,
display_name, api_key and labels (k=v;k=v). The whole file is checked first;
a bad row stops everything before anything is sent (exit 2).

Re-running is safe: a workspace already registered with the same key (same
credential fingerprint) is "unchanged", or "updated" when its display name or
labels differ; one registered with another key is a "conflict" (use
'agencyctl workspaces rotate'), which does not fail the run.`,
		Args: exactArgs(0, "no arguments (use --csv FILE)"),
		RunE: c.action(func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usageErr("--csv FILE is required")
			}
			if parallel < 1 || parallel > 64 {
				return usageErr("--parallel must be 1-64")
			}
			data, err := os.ReadFile(file)
			if err != nil {
				return usageErr("--csv: " + pathErr(err))
			}
			rows, problems := parseImportCSV(data)
			if len(problems) > 0 {
				return csvErr(file, problems)
			}
			return c.importWorkspaces(cmd.Context(), rows, dryRun, parallel)
		}),
	}
	cmd.Flags().StringVar(&file, "csv", "", "CSV file with a header row")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show what would change, change nothing")
	cmd.Flags().IntVar(&parallel, "parallel", 8, "registrations in flight at once")
	return cmd
}

func (c *cli) importWorkspaces(ctx context.Context, rows []importRow, dryRun bool, parallel int) error {
	// One listing answers every "is it there?", and proves the connection
	// and the token before any write.
	existing, err := c.listWorkspaces(ctx, "")
	if err != nil {
		return err
	}
	byName := map[string]*agencyv1.Workspace{}
	for _, w := range existing {
		byName[w.GetName()] = w
	}
	api, err := c.workspacesAPI()
	if err != nil {
		return err
	}
	results := make([]importResult, len(rows))
	var fatalMu sync.Mutex
	var fatal error
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for i, row := range rows {
		g.Go(func() error {
			r, err := c.importOne(gctx, api, row, byName["workspaces/"+row.id], dryRun)
			if err != nil && isConnectionFailure(err) {
				fatalMu.Lock()
				fatal = cmp(fatal, err)
				fatalMu.Unlock()
				return err
			}
			results[i] = r
			return nil
		})
	}
	_ = g.Wait()
	if fatal != nil {
		return fatal
	}
	return c.printImport(results)
}

func cmp(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// isConnectionFailure tells errors that concern the whole run (agencyd
// unreachable, the token refused) from one row's failure.
func isConnectionFailure(err error) bool {
	st, ok := status.FromError(err)
	if !ok {
		return true
	}
	switch st.Code() {
	case codes.Unauthenticated, codes.DeadlineExceeded, codes.Canceled:
		return true
	case codes.Unavailable:
		return errorInfo(st.Proto()) == nil
	case codes.PermissionDenied: // the caller's role, not Instantly's SCOPE_DENIED
		info := errorInfo(st.Proto())
		return info == nil || info.GetReason() == "PERMISSION_DENIED"
	}
	return false
}

func (c *cli) importOne(ctx context.Context, api agencyv1.WorkspaceServiceClient, row importRow, have *agencyv1.Workspace, dryRun bool) (importResult, error) {
	name := "workspaces/" + row.id
	fp := vault.Fingerprint(row.apiKey)
	res := importResult{Workspace: name, Line: row.line, Fingerprint: fp}
	if have == nil {
		if dryRun {
			res.Result, res.Detail = "would-create", "not registered"
			return res, nil
		}
		cctx, cancel := c.call(ctx)
		defer cancel()
		key := row.apiKey
		w, err := api.CreateWorkspace(cctx, &agencyv1.CreateWorkspaceRequest{WorkspaceId: row.id, RequestId: newRequestID(),
			Workspace: &agencyv1.Workspace{DisplayName: row.displayName, Labels: row.labels, ApiKey: &key}})
		switch {
		case err == nil:
			res.Result, res.Detail = "created", "Instantly workspace "+w.GetInstantlyWorkspaceName()
		case isCode(err, codes.AlreadyExists):
			// The Instantly workspace is registered under another name.
			res.Result, res.Detail = "conflict", statusText(status.Convert(err).Proto())
		default:
			if isConnectionFailure(err) {
				return res, err
			}
			res.Result, res.Detail = "failed", statusText(status.Convert(err).Proto())
		}
		return res, nil
	}
	if have.GetCredentialFingerprint() != fp {
		res.Result = "conflict"
		if have.GetAdminWorkspace() != "" {
			res.Detail = "registered through admin workspace " + shortName(have.GetAdminWorkspace()) + "'s key"
		} else {
			res.Detail = fmt.Sprintf("registered with another credential (%s); to replace it: agencyctl workspaces rotate %s --api-key-file FILE",
				have.GetCredentialFingerprint(), row.id)
		}
		return res, nil
	}
	var paths []string
	if have.GetDisplayName() != row.displayName {
		paths = append(paths, "display_name")
	}
	if !maps.Equal(have.GetLabels(), row.labels) {
		paths = append(paths, "labels")
	}
	if len(paths) == 0 {
		res.Result = "unchanged"
		return res, nil
	}
	detail := "changed " + strings.Join(paths, ", ")
	if dryRun {
		res.Result, res.Detail = "would-update", detail
		return res, nil
	}
	cctx, cancel := c.call(ctx)
	defer cancel()
	_, err := api.UpdateWorkspace(cctx, &agencyv1.UpdateWorkspaceRequest{RequestId: newRequestID(),
		Workspace:  &agencyv1.Workspace{Name: name, DisplayName: row.displayName, Labels: row.labels},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: paths}})
	if err != nil {
		if isConnectionFailure(err) {
			return res, err
		}
		res.Result, res.Detail = "failed", statusText(status.Convert(err).Proto())
		return res, nil
	}
	res.Result, res.Detail = "updated", detail
	return res, nil
}

// importRank puts what needs attention first.
func importRank(result string) int {
	switch result {
	case "failed":
		return 0
	case "conflict":
		return 1
	}
	return 2
}

func (c *cli) printImport(results []importResult) error {
	counts := map[string]int{}
	for _, r := range results {
		counts[r.Result]++
	}
	sorted := slices.Clone(results)
	sort.SliceStable(sorted, func(i, j int) bool { return importRank(sorted[i].Result) < importRank(sorted[j].Result) })
	if c.out.machine() {
		if err := c.out.doc(map[string]any{"results": sorted, "summary": counts}); err != nil {
			return err
		}
	} else {
		rows := make([][]string, 0, len(sorted))
		for _, r := range sorted {
			result := r.Result
			switch result {
			case "failed":
				result = c.out.red(result)
			case "conflict":
				result = c.out.yellow(result)
			case "created", "updated":
				result = c.out.green(result)
			}
			rows = append(rows, []string{shortName(r.Workspace), fmt.Sprint(r.Line), result, r.Detail})
		}
		c.out.table([]string{"workspace", "line", "result", "detail"}, rows)
		var parts []string
		for _, k := range []string{"created", "updated", "unchanged", "conflict", "failed", "would-create", "would-update"} {
			if counts[k] > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", counts[k], k))
			}
		}
		fmt.Fprintf(c.env.Out, "\n%s: %s\n", plural(len(results), "workspace"), strings.Join(parts, ", "))
	}
	if counts["failed"] > 0 {
		return failedErr(fmt.Sprintf("%s of %d failed", plural(counts["failed"], "workspace"), len(results)))
	}
	return nil
}

func (c *cli) wsVerifyCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "verify NAME...",
		Short:             "Re-check stored keys against Instantly",
		Args:              minArgs(1, "one or more workspace NAMEs"),
		ValidArgsFunction: c.completeWorkspaceArgs,
		RunE: c.action(func(cmd *cobra.Command, args []string) error {
			names, err := workspaceNames(args)
			if err != nil {
				return err
			}
			api, err := c.workspacesAPI()
			if err != nil {
				return err
			}
			var list []*agencyv1.Workspace
			bad := 0
			for _, n := range names {
				ctx, cancel := c.call(cmd.Context())
				w, err := api.VerifyWorkspace(ctx, &agencyv1.VerifyWorkspaceRequest{Name: n, RequestId: newRequestID()})
				cancel()
				if err != nil {
					return err
				}
				if w.GetState() != agencyv1.Workspace_STATE_ACTIVE {
					bad++
				}
				list = append(list, w)
			}
			if c.out.machine() {
				if err := c.out.proto(&agencyv1.ListWorkspacesResponse{Workspaces: list}); err != nil {
					return err
				}
			} else {
				rows := [][]string{}
				for _, w := range list {
					st := stateName(w.GetState())
					if w.GetState() != agencyv1.Workspace_STATE_ACTIVE {
						st = c.out.red(st)
					}
					rows = append(rows, []string{shortName(w.GetName()), st, w.GetStateMessage()})
				}
				c.out.table([]string{"workspace", "state", "message"}, rows)
			}
			if bad > 0 {
				return failedErr(fmt.Sprintf("%s not active", plural(bad, "workspace")))
			}
			return nil
		}),
	}
}

func workspaceNames(args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		for p := range strings.SplitSeq(a, ",") {
			n, err := workspaceName(p)
			if err != nil {
				return nil, err
			}
			out = append(out, n)
		}
	}
	return out, nil
}

func (c *cli) wsRotateCmd() *cobra.Command {
	var keyFile string
	cmd := &cobra.Command{
		Use:               "rotate NAME --api-key-file FILE",
		Short:             "Replace a workspace's stored key (it must belong to the same Instantly workspace)",
		Args:              exactArgs(1, "a workspace NAME"),
		ValidArgsFunction: c.completeWorkspaceArgs,
		RunE: c.action(func(cmd *cobra.Command, args []string) error {
			name, err := workspaceName(args[0])
			if err != nil {
				return err
			}
			if keyFile == "" {
				return usageErr("--api-key-file is required")
			}
			key, err := c.readSecretFile("--api-key-file", keyFile)
			if err != nil {
				return err
			}
			api, err := c.workspacesAPI()
			if err != nil {
				return err
			}
			ctx, cancel := c.call(cmd.Context())
			defer cancel()
			w, err := api.RotateWorkspaceCredential(ctx, &agencyv1.RotateWorkspaceCredentialRequest{Name: name, ApiKey: key, RequestId: newRequestID()})
			if err != nil {
				return err
			}
			return c.printWorkspace(w)
		}),
	}
	cmd.Flags().StringVar(&keyFile, "api-key-file", "", "file with the new Instantly API key (- reads stdin)")
	return cmd
}

func (c *cli) wsRelabelCmd() *cobra.Command {
	var display string
	cmd := &cobra.Command{
		Use:               "relabel NAME key=value... key-...",
		Short:             "Set (key=value) or remove (key-) labels, or --display-name",
		Args:              minArgs(1, "a workspace NAME and label changes"),
		ValidArgsFunction: c.completeWorkspaceArgs,
		RunE: c.action(func(cmd *cobra.Command, args []string) error {
			name, err := workspaceName(args[0])
			if err != nil {
				return err
			}
			set, remove := map[string]string{}, []string{}
			for _, a := range args[1:] {
				if k, ok := strings.CutSuffix(a, "-"); ok && !strings.Contains(a, "=") {
					remove = append(remove, k)
					continue
				}
				l, err := parseLabelFlags([]string{a})
				if err != nil {
					return err
				}
				maps.Copy(set, l)
			}
			if len(set) == 0 && len(remove) == 0 && display == "" {
				return usageErr("nothing to change: give key=value, key- or --display-name")
			}
			api, err := c.workspacesAPI()
			if err != nil {
				return err
			}
			ctx, cancel := c.call(cmd.Context())
			defer cancel()
			w, err := api.GetWorkspace(ctx, &agencyv1.GetWorkspaceRequest{Name: name})
			if err != nil {
				return err
			}
			upd := &agencyv1.Workspace{Name: name, Labels: maps.Clone(w.GetLabels())}
			if upd.Labels == nil {
				upd.Labels = map[string]string{}
			}
			maps.Copy(upd.Labels, set)
			for _, k := range remove {
				delete(upd.Labels, k)
			}
			var paths []string
			if len(set) > 0 || len(remove) > 0 {
				paths = append(paths, "labels")
			}
			if display != "" {
				upd.DisplayName = display
				paths = append(paths, "display_name")
			}
			w, err = api.UpdateWorkspace(ctx, &agencyv1.UpdateWorkspaceRequest{Workspace: upd, UpdateMask: &fieldmaskpb.FieldMask{Paths: paths}, RequestId: newRequestID()})
			if err != nil {
				return err
			}
			return c.printWorkspace(w)
		}),
	}
	cmd.Flags().StringVar(&display, "display-name", "", "new display name")
	return cmd
}

func (c *cli) wsRmCmd() *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:               "rm NAME...",
		Aliases:           []string{"delete"},
		Short:             "Remove workspaces from the registry (nothing changes in Instantly)",
		Args:              minArgs(1, "one or more workspace NAMEs"),
		ValidArgsFunction: c.completeWorkspaceArgs,
		RunE: c.action(func(cmd *cobra.Command, args []string) error {
			names, err := workspaceNames(args)
			if err != nil {
				return err
			}
			if err := c.confirm(fmt.Sprintf("Remove %s from the registry (%s)?", plural(len(names), "workspace"), strings.Join(names, ", ")), yes); err != nil {
				return err
			}
			api, err := c.workspacesAPI()
			if err != nil {
				return err
			}
			for _, n := range names {
				ctx, cancel := c.call(cmd.Context())
				_, err := api.DeleteWorkspace(ctx, &agencyv1.DeleteWorkspaceRequest{Name: n, RequestId: newRequestID()})
				cancel()
				if err != nil {
					return err
				}
				c.out.info("removed %s", n)
			}
			return nil
		}),
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

func (c *cli) wsDiscoverCmd() *cobra.Command {
	var admin string
	var register bool
	var lbls []string
	cmd := &cobra.Command{
		Use:   "discover --admin NAME [--register]",
		Short: "List (and register) the sub workspaces of an admin workspace's group",
		Args:  exactArgs(0, "no arguments (use --admin NAME)"),
		RunE: c.action(func(cmd *cobra.Command, _ []string) error {
			if admin == "" {
				return usageErr("--admin NAME is required")
			}
			name, err := workspaceName(admin)
			if err != nil {
				return err
			}
			l, err := parseLabelFlags(lbls)
			if err != nil {
				return err
			}
			api, err := c.workspacesAPI()
			if err != nil {
				return err
			}
			ctx, cancel := c.call(cmd.Context())
			defer cancel()
			req := &agencyv1.DiscoverSubWorkspacesRequest{Name: name, Register: register, Labels: l}
			if register {
				req.RequestId = newRequestID()
			}
			resp, err := api.DiscoverSubWorkspaces(ctx, req)
			if err != nil {
				return err
			}
			if c.out.machine() {
				return c.out.proto(resp)
			}
			rows := [][]string{}
			for _, s := range resp.GetSubWorkspaces() {
				now := ""
				if s.GetRegisteredNow() {
					now = "yes"
				}
				rows = append(rows, []string{s.GetInstantlyWorkspaceId(), s.GetInstantlyWorkspaceName(),
					strings.ToLower(strings.TrimPrefix(s.GetStatus().String(), "STATUS_")), shortName(s.GetRegisteredWorkspace()), now})
			}
			c.out.table([]string{"instantly id", "name", "status", "registered as", "registered now"}, rows)
			return nil
		}),
	}
	cmd.Flags().StringVar(&admin, "admin", "", "the registered admin workspace")
	cmd.Flags().BoolVar(&register, "register", false, "register the accepted sub workspaces not registered yet")
	cmd.Flags().StringArrayVar(&lbls, "label", nil, "label key=value for newly registered workspaces (repeatable)")
	return cmd
}

// completeWorkspaces completes workspace names from the registry.
func (c *cli) completeWorkspaces(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
	c.timeout = min(c.timeout, 3*time.Second) // a shell waits for it
	if c.out == nil {
		c.out = newPrinter(Env{Streams: Streams{Out: io.Discard, Err: io.Discard}, Getenv: c.env.Getenv}, "")
	}
	list, err := c.listWorkspaces(cmd.Context(), "")
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	out := make([]string, 0, len(list))
	for _, w := range list {
		out = append(out, shortName(w.GetName())+"\t"+w.GetDisplayName())
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

func (c *cli) completeWorkspaceArgs(cmd *cobra.Command, args []string, s string) ([]string, cobra.ShellCompDirective) {
	return c.completeWorkspaces(cmd, args, s)
}
