package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"
)

// configFile is agencyctl's config: named contexts, like kubeconfig. It is
// written 0600 because a context may hold a token.
type configFile struct {
	CurrentContext string                   `json:"current-context,omitempty"`
	Contexts       map[string]*contextEntry `json:"contexts,omitempty"`
}

// contextEntry is how to reach one agencyd.
type contextEntry struct {
	Addr      string `json:"addr,omitempty"`
	HTTPAddr  string `json:"http-addr,omitempty"`
	Token     string `json:"token,omitempty"`
	TokenFile string `json:"token-file,omitempty"`
	CA        string `json:"ca,omitempty"`
	Cert      string `json:"cert,omitempty"`
	Key       string `json:"key,omitempty"`
}

func (c *cli) configFilePath() (string, error) {
	if c.configPath != "" {
		return c.configPath, nil
	}
	if p := c.env.Getenv("AGENCYCTL_CONFIG"); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no config directory (set AGENCYCTL_CONFIG): %w", err)
	}
	return filepath.Join(dir, "agencyctl", "config.yaml"), nil
}

// loadConfig reads the config file; a missing file is an empty config.
func (c *cli) loadConfig() (*configFile, string, error) {
	path, err := c.configFilePath()
	if err != nil {
		return nil, "", err
	}
	cfg := &configFile{Contexts: map[string]*contextEntry{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, path, nil
	}
	if err != nil {
		return nil, path, usageErr("config file: " + pathErr(err))
	}
	if err := yaml.UnmarshalStrict(b, cfg); err != nil {
		return nil, path, usageErr(fmt.Sprintf("config file %s: %v", path, err))
	}
	if cfg.Contexts == nil {
		cfg.Contexts = map[string]*contextEntry{}
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 && c.out != nil {
		c.out.info("agencyctl: warning: %s is readable by others (chmod 600 %s)", path, path)
	}
	return cfg, path, nil
}

// saveConfig writes the file 0600 (its directory 0700), replacing it
// atomically so a crash never leaves half a file.
func saveConfig(path string, cfg *configFile) error {
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".config-*.yaml")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// currentContext is the context in force: --context, AGENCY_CONTEXT, or
// the file's current-context (nil when there is none).
func (c *cli) currentContext() (*contextEntry, error) {
	cfg, path, err := c.loadConfig()
	if err != nil {
		return nil, err
	}
	name, _ := first(kv{c.contextName, ""}, kv{c.env.Getenv("AGENCY_CONTEXT"), ""}, kv{cfg.CurrentContext, ""})
	if name == "" {
		return nil, nil
	}
	e, ok := cfg.Contexts[name]
	if !ok {
		return nil, usageErr(fmt.Sprintf("context %q is not in %s (see 'agencyctl config get-contexts')", name, path))
	}
	return e, nil
}

func (c *cli) configCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Manage contexts: named agencyd addresses and credentials",
		Long: `Contexts live in <user config dir>/agencyctl/config.yaml (or AGENCYCTL_CONFIG),
written 0600. set-context takes the global connection flags:

  agencyctl config set-context prod --addr https://agencyd.example:9090 --ca ca.pem --token-file ~/.agency-token
  echo "$TOKEN" | agencyctl config set-context dev --addr 127.0.0.1:9090 --token-stdin
  agencyctl config use-context prod`,
	}
	var tokenStdin, use bool
	set := &cobra.Command{
		Use:   "set-context NAME",
		Short: "Create or update a context from --addr, --token-file, --ca, --cert, --key (or --token-stdin)",
		Args:  exactArgs(1, "the context name"),
		RunE: c.action(func(cmd *cobra.Command, args []string) error {
			cfg, path, err := c.loadConfig()
			if err != nil {
				return err
			}
			e := cfg.Contexts[args[0]]
			if e == nil {
				e = &contextEntry{}
				cfg.Contexts[args[0]] = e
			}
			flags := cmd.Flags()
			if flags.Changed("addr") {
				e.Addr = c.addr
			}
			if flags.Changed("http-addr") {
				e.HTTPAddr = c.httpAddr
			}
			if flags.Changed("ca") {
				e.CA = absPath(c.caFile)
			}
			if flags.Changed("cert") {
				e.Cert = absPath(c.certFile)
			}
			if flags.Changed("key") {
				e.Key = absPath(c.key)
			}
			if flags.Changed("token-file") {
				e.TokenFile, e.Token = absPath(c.tokenFile), ""
			}
			if flags.Changed("token") {
				e.Token, e.TokenFile = c.token, ""
			}
			if tokenStdin {
				line, err := bufio.NewReader(c.env.In).ReadString('\n')
				line = strings.TrimSpace(line)
				if line == "" {
					return usageErr(fmt.Sprintf("--token-stdin: no token on standard input (%v)", err))
				}
				e.Token, e.TokenFile = line, ""
			}
			if use || cfg.CurrentContext == "" {
				cfg.CurrentContext = args[0]
			}
			if err := saveConfig(path, cfg); err != nil {
				return fmt.Errorf("write %s: %w", path, err)
			}
			c.out.info("context %q saved in %s", args[0], path)
			return nil
		}),
	}
	set.Flags().BoolVar(&tokenStdin, "token-stdin", false, "read the token from standard input and store it in the file (0600)")
	set.Flags().BoolVar(&use, "use", false, "make it the current context")

	useCmd := &cobra.Command{
		Use:               "use-context NAME",
		Short:             "Make NAME the current context",
		Args:              exactArgs(1, "the context name"),
		ValidArgsFunction: c.completeContexts,
		RunE: c.action(func(_ *cobra.Command, args []string) error {
			cfg, path, err := c.loadConfig()
			if err != nil {
				return err
			}
			if _, ok := cfg.Contexts[args[0]]; !ok {
				return usageErr(fmt.Sprintf("no context %q in %s", args[0], path))
			}
			cfg.CurrentContext = args[0]
			if err := saveConfig(path, cfg); err != nil {
				return fmt.Errorf("write %s: %w", path, err)
			}
			c.out.info("switched to context %q", args[0])
			return nil
		}),
	}
	get := &cobra.Command{
		Use:   "get-contexts",
		Short: "List the contexts (tokens are never shown)",
		Args:  exactArgs(0, "no arguments"),
		RunE: c.action(func(_ *cobra.Command, _ []string) error {
			cfg, _, err := c.loadConfig()
			if err != nil {
				return err
			}
			names := make([]string, 0, len(cfg.Contexts))
			for n := range cfg.Contexts {
				names = append(names, n)
			}
			sort.Strings(names)
			if c.out.machine() {
				type ctxOut struct {
					Name    string `json:"name"`
					Current bool   `json:"current"`
					Addr    string `json:"addr"`
					Auth    string `json:"auth"`
					TLS     bool   `json:"tls"`
				}
				list := []ctxOut{}
				for _, n := range names {
					e := cfg.Contexts[n]
					list = append(list, ctxOut{n, n == cfg.CurrentContext, e.Addr, authKind(e), tlsOn(e)})
				}
				return c.out.doc(map[string]any{"contexts": list})
			}
			rows := [][]string{}
			for _, n := range names {
				e := cfg.Contexts[n]
				cur := ""
				if n == cfg.CurrentContext {
					cur = "*"
				}
				rows = append(rows, []string{cur, n, e.Addr, authKind(e)})
			}
			c.out.table([]string{"current", "name", "addr", "auth"}, rows)
			return nil
		}),
	}
	current := &cobra.Command{
		Use:   "current-context",
		Short: "Print the current context's name",
		Args:  exactArgs(0, "no arguments"),
		RunE: c.action(func(_ *cobra.Command, _ []string) error {
			cfg, _, err := c.loadConfig()
			if err != nil {
				return err
			}
			if cfg.CurrentContext == "" {
				return failedErr("no current context (agencyctl config use-context NAME)")
			}
			fmt.Fprintln(c.env.Out, cfg.CurrentContext)
			return nil
		}),
	}
	del := &cobra.Command{
		Use:               "delete-context NAME",
		Short:             "Remove a context",
		Args:              exactArgs(1, "the context name"),
		ValidArgsFunction: c.completeContexts,
		RunE: c.action(func(_ *cobra.Command, args []string) error {
			cfg, path, err := c.loadConfig()
			if err != nil {
				return err
			}
			if _, ok := cfg.Contexts[args[0]]; !ok {
				return usageErr(fmt.Sprintf("no context %q in %s", args[0], path))
			}
			delete(cfg.Contexts, args[0])
			if cfg.CurrentContext == args[0] {
				cfg.CurrentContext = ""
			}
			if err := saveConfig(path, cfg); err != nil {
				return fmt.Errorf("write %s: %w", path, err)
			}
			c.out.info("context %q deleted", args[0])
			return nil
		}),
	}
	cmd.AddCommand(set, useCmd, get, current, del)
	return cmd
}

func authKind(e *contextEntry) string {
	switch {
	case e.Token != "":
		return "token (stored)"
	case e.TokenFile != "":
		return "token file " + e.TokenFile
	case e.Cert != "":
		return "certificate " + e.Cert
	}
	return "none"
}

func tlsOn(e *contextEntry) bool {
	return e.CA != "" || e.Cert != "" || strings.HasPrefix(e.Addr, "https://")
}

func absPath(p string) string {
	if p == "" || strings.HasPrefix(p, "~/") {
		return p
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

func (c *cli) completeContexts(_ *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
	cfg, _, err := c.loadConfig()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var names []string
	for n := range cfg.Contexts {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, cobra.ShellCompDirectiveNoFileComp
}
