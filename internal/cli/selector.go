package cli

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/labels"
)

// workspaceIDRE is the {workspace} part of a resource name.
var workspaceIDRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// selectorFlags are -w NAME (repeatable), -l SELECTOR and --all.
type selectorFlags struct {
	names    []string
	selector string
	all      bool
}

func (s *selectorFlags) register(cmd *cobra.Command, c *cli) {
	cmd.Flags().StringSliceVarP(&s.names, "workspace", "w", nil, "workspace NAME (repeat or comma-separate for several)")
	cmd.Flags().StringVarP(&s.selector, "selector", "l", "", "label selector, e.g. team=sdr-west,client!=internal")
	cmd.Flags().BoolVar(&s.all, "all", false, "every workspace in your scope")
	_ = cmd.RegisterFlagCompletionFunc("workspace", c.completeWorkspaces)
}

// set reports whether any of the three was given.
func (s *selectorFlags) set() bool { return len(s.names) > 0 || s.selector != "" || s.all }

// single returns the one workspace of -w NAME, or "" when the command is
// fanned out (-l, --all or several -w).
func (s *selectorFlags) single() (string, error) {
	if err := s.check(); err != nil {
		return "", err
	}
	if len(s.names) == 1 {
		return workspaceName(s.names[0])
	}
	return "", nil
}

func (s *selectorFlags) check() error {
	n := 0
	if len(s.names) > 0 {
		n++
	}
	if s.selector != "" {
		n++
	}
	if s.all {
		n++
	}
	switch {
	case n == 0:
		return usageErr("choose the workspaces: -w NAME, -l SELECTOR or --all")
	case n > 1:
		return usageErr("-w, -l and --all exclude each other")
	}
	if s.selector != "" {
		if _, err := labels.Parse(s.selector); err != nil {
			return usageErr(fmt.Sprintf("-l %q: %v", s.selector, err))
		}
	}
	return nil
}

// proto returns the fan-out selector.
func (s *selectorFlags) proto() (*agencyv1.WorkspaceSelector, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	switch {
	case s.all:
		return &agencyv1.WorkspaceSelector{All: true}, nil
	case s.selector != "":
		return &agencyv1.WorkspaceSelector{LabelSelector: s.selector}, nil
	}
	sel := &agencyv1.WorkspaceSelector{}
	seen := map[string]bool{}
	for _, n := range s.names {
		name, err := workspaceName(n)
		if err != nil {
			return nil, err
		}
		if !seen[name] {
			seen[name] = true
			sel.Names = append(sel.Names, name)
		}
	}
	return sel, nil
}

// describe is the selector in words, for plans and prompts.
func (s *selectorFlags) describe() string {
	switch {
	case s.all:
		return "all workspaces"
	case s.selector != "":
		return "-l " + s.selector
	}
	return "-w " + strings.Join(s.names, ",")
}

// key is the selector as the request_id of onboarding hashes it.
func (s *selectorFlags) key() string {
	switch {
	case s.all:
		return "all"
	case s.selector != "":
		if sel, err := labels.Parse(s.selector); err == nil {
			return "selector:" + sel.String()
		}
		return "selector:" + s.selector
	}
	return "names:" + strings.Join(s.names, ",")
}

// workspaceName accepts "acme" or "workspaces/acme".
func workspaceName(s string) (string, error) {
	id := strings.TrimPrefix(strings.TrimSpace(s), "workspaces/")
	if !workspaceIDRE.MatchString(id) {
		return "", usageErr(fmt.Sprintf("workspace %q: want 1-63 of [a-z0-9-], starting and ending alphanumeric", s))
	}
	return "workspaces/" + id, nil
}

// shortName drops the "workspaces/" prefix for tables.
func shortName(name string) string { return strings.TrimPrefix(name, "workspaces/") }

// parseLabelFlags reads k=v pairs.
func parseLabelFlags(pairs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			return nil, usageErr(fmt.Sprintf("label %q: want key=value", p))
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	if err := labels.Validate(out); err != nil {
		return nil, usageErr(err.Error())
	}
	return out, nil
}
