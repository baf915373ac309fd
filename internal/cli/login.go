package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/oauth2"
)

// loginCache is what `agencyctl login` keeps (0600, beside the config
// file): the identity provider's tokens and how to refresh them.
type loginCache struct {
	Issuer       string    `json:"issuer"`
	ClientID     string    `json:"client_id"`
	ClientSecret string    `json:"client_secret,omitempty"`
	TokenURL     string    `json:"token_url"`
	Scopes       []string  `json:"scopes,omitempty"`
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	IDToken      string    `json:"id_token,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
}

// loginRefreshMargin: a cached token this close to its expiry is refreshed.
const loginRefreshMargin = 30 * time.Second

func (c *cli) loginPath() (string, error) {
	cfg, err := c.configFilePath()
	if err != nil {
		return "", err
	}
	return filepath.Join(filepath.Dir(cfg), "login.json"), nil
}

// bearer is what agencyd verifies: the ID token (its --oidc-audience is
// the client id), or the access token when the provider gave none.
func (l *loginCache) bearer() string {
	if l.IDToken != "" {
		return l.IDToken
	}
	return l.AccessToken
}

// expiry is the bearer's expiry: the ID token's exp claim (read, not
// verified: agencyd verifies), else the access token's.
func (l *loginCache) expiry() time.Time {
	if l.IDToken != "" {
		if c := jwtClaims(l.IDToken); c != nil {
			if exp, ok := c["exp"].(float64); ok {
				return time.Unix(int64(exp), 0)
			}
		}
	}
	return l.Expiry
}

// jwtClaims decodes a JWT's payload without verifying it.
func jwtClaims(tok string) map[string]any {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	return m
}

func (l *loginCache) oauth() *oauth2.Config {
	return &oauth2.Config{ClientID: l.ClientID, ClientSecret: l.ClientSecret, Scopes: l.Scopes,
		Endpoint: oauth2.Endpoint{TokenURL: l.TokenURL}}
}

// take records a token response.
func (l *loginCache) take(tok *oauth2.Token) {
	l.AccessToken, l.Expiry = tok.AccessToken, tok.Expiry
	if tok.RefreshToken != "" {
		l.RefreshToken = tok.RefreshToken
	}
	l.IDToken = ""
	if id, ok := tok.Extra("id_token").(string); ok {
		l.IDToken = id
	}
}

func saveLogin(path string, l *loginCache) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// loginToken is the cached login's bearer token, refreshed when it is
// about to expire; "" when nobody logged in.
func (c *cli) loginToken() (string, error) {
	path, err := c.loginPath()
	if err != nil {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", usageErr("login cache: " + pathErr(err))
	}
	l := &loginCache{}
	if err := json.Unmarshal(b, l); err != nil {
		return "", usageErr(fmt.Sprintf("login cache %s is damaged: run agencyctl login again", path))
	}
	if exp := l.expiry(); exp.IsZero() || time.Until(exp) > loginRefreshMargin {
		return l.bearer(), nil
	}
	if l.RefreshToken == "" {
		return "", failedErr(fmt.Sprintf("the login at %s expired: run agencyctl login again", l.Issuer))
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	tok, err := l.oauth().TokenSource(ctx, &oauth2.Token{RefreshToken: l.RefreshToken, Expiry: time.Now().Add(-time.Minute)}).Token()
	if err != nil {
		return "", failedErr(fmt.Sprintf("refreshing the login at %s failed (run agencyctl login again): %s", l.Issuer, oauthErr(err)))
	}
	l.take(tok)
	if err := saveLogin(path, l); err != nil {
		c.out.info("agencyctl: warning: could not update %s: %v", path, err)
	}
	return l.bearer(), nil
}

// oauthErr is an OAuth error in one line, without the response body.
func oauthErr(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.ErrorCode != "" {
			s := re.ErrorCode
			if re.ErrorDescription != "" {
				s += ": " + re.ErrorDescription
			}
			return s
		}
		if re.Response != nil {
			return re.Response.Status
		}
	}
	return rootCause(err)
}

// discovery is the part of the OpenID Provider metadata login needs.
type discovery struct {
	Issuer       string `json:"issuer"`
	DeviceAuth   string `json:"device_authorization_endpoint"`
	TokenURL     string `json:"token_endpoint"`
	Registration string `json:"registration_endpoint"`
}

func (c *cli) discover(ctx context.Context, issuer string) (*discovery, error) {
	u := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	ctx, cancel := c.call(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, usageErr(fmt.Sprintf("--issuer %q: %v", issuer, err))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, failedErr(fmt.Sprintf("cannot reach the issuer %s: %s", issuer, rootCause(err)))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return nil, failedErr(fmt.Sprintf("%s: %s", u, resp.Status))
	}
	d := &discovery{}
	if err := json.Unmarshal(body, d); err != nil {
		return nil, failedErr(fmt.Sprintf("%s: not OpenID Provider metadata", u))
	}
	if d.DeviceAuth == "" || d.TokenURL == "" {
		return nil, failedErr(fmt.Sprintf("the issuer %s offers no device authorization (RFC 8628): no device_authorization_endpoint in its metadata", issuer))
	}
	return d, nil
}

func (c *cli) loginCmd() *cobra.Command {
	var issuer, clientID, secretFile string
	var scopes []string
	cmd := &cobra.Command{
		Use:   "login --issuer URL --client-id ID",
		Short: "Sign in with the identity provider (OAuth device authorization) and cache the token",
		Long: `Sign in with the agency's identity provider using the OAuth 2.0 device
authorization grant (RFC 8628): agencyctl prints a URL and a code, you
confirm in any browser, and the provider's ID token is cached 0600 beside
the config file (login.json) and refreshed with its refresh token when it
expires. agencyd must trust the issuer (--oidc-issuer, with the client id
as --oidc-audience).

The cached token is used when no other token is given (--token,
--token-file, AGENCY_TOKEN or the context's token win). 'agencyctl logout'
forgets it.`,
		Args: exactArgs(0, "no arguments"),
		RunE: c.action(func(cmd *cobra.Command, _ []string) error {
			if issuer == "" || clientID == "" {
				return usageErr("--issuer and --client-id are required")
			}
			if !strings.HasPrefix(issuer, "https://") && !strings.HasPrefix(issuer, "http://") {
				return usageErr(fmt.Sprintf("--issuer %q: want an https:// URL", issuer))
			}
			secret := ""
			if secretFile != "" {
				b, err := os.ReadFile(expandHome(secretFile))
				if err != nil {
					return usageErr("--client-secret-file: " + pathErr(err))
				}
				secret = strings.TrimSpace(string(b))
			}
			path, err := c.loginPath()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			d, err := c.discover(ctx, issuer)
			if err != nil {
				return err
			}
			l := &loginCache{Issuer: issuer, ClientID: clientID, ClientSecret: secret, TokenURL: d.TokenURL, Scopes: scopes}
			cfg := l.oauth()
			cfg.Endpoint.DeviceAuthURL = d.DeviceAuth
			actx, cancel := c.call(ctx)
			da, err := cfg.DeviceAuth(actx)
			cancel()
			if err != nil {
				return failedErr(fmt.Sprintf("device authorization at %s: %s", d.DeviceAuth, oauthErr(err)))
			}
			if da.VerificationURIComplete != "" {
				c.out.info("Open %s\nand confirm the code %s (waiting; Ctrl-C stops)", da.VerificationURIComplete, da.UserCode)
			} else {
				c.out.info("Open %s\nand enter the code %s (waiting; Ctrl-C stops)", da.VerificationURI, da.UserCode)
			}
			tok, err := cfg.DeviceAccessToken(ctx, da)
			if err != nil {
				if ctx.Err() != nil {
					return &exitError{code: exitInterrupted, msg: "interrupted: not logged in"}
				}
				return failedErr("login failed: " + oauthErr(err))
			}
			l.take(tok)
			if err := saveLogin(path, l); err != nil {
				return failedErr(fmt.Sprintf("cache the token in %s: %v", path, err))
			}
			who := ""
			if claims := jwtClaims(l.IDToken); claims != nil {
				if e, ok := claims["email"].(string); ok {
					who = e
				} else if s, ok := claims["sub"].(string); ok {
					who = s
				}
			}
			if c.out.machine() {
				return c.out.doc(map[string]any{"issuer": issuer, "subject": who, "expiry": l.expiry().UTC().Format(time.RFC3339), "cache": path})
			}
			fmt.Fprintf(c.env.Out, "Logged in at %s", issuer)
			if who != "" {
				fmt.Fprintf(c.env.Out, " as %s", who)
			}
			fmt.Fprintf(c.env.Out, "; token cached in %s", path)
			if exp := l.expiry(); !exp.IsZero() {
				fmt.Fprintf(c.env.Out, " (expires %s", exp.UTC().Format(time.RFC3339))
				if l.RefreshToken != "" {
					fmt.Fprint(c.env.Out, ", then refreshed")
				}
				fmt.Fprint(c.env.Out, ")")
			}
			fmt.Fprintln(c.env.Out)
			return nil
		}),
	}
	cmd.Flags().StringVar(&issuer, "issuer", "", "the identity provider's issuer URL (as agencyd's --oidc-issuer)")
	cmd.Flags().StringVar(&clientID, "client-id", "", "the OAuth client id (agencyd's --oidc-audience)")
	cmd.Flags().StringVar(&secretFile, "client-secret-file", "", "file holding the client secret, for providers that require one (Google)")
	cmd.Flags().StringSliceVar(&scopes, "scopes", []string{"openid", "email", "profile"}, "scopes to ask for (add offline_access for a refresh token from Okta or Entra)")
	return cmd
}

func (c *cli) logoutCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "Forget the token 'agencyctl login' cached",
		Args:  exactArgs(0, "no arguments"),
		RunE: c.action(func(_ *cobra.Command, _ []string) error {
			path, err := c.loginPath()
			if err != nil {
				return err
			}
			if err := os.Remove(path); err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					c.out.info("not logged in")
					return nil
				}
				return failedErr(pathErr(err))
			}
			c.out.info("logged out: %s removed", path)
			return nil
		}),
	}
}
