package agencyplane_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The Dockerfile builds with the Go version go.mod asks for.
func TestDockerfileGoMatchesGoMod(t *testing.T) {
	mod, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	want := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(mod)
	docker, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	got := regexp.MustCompile(`(?m)^FROM golang:([0-9][^-\s]*)`).FindSubmatch(docker)
	if want == nil || got == nil || string(got[1]) != string(want[1]) {
		t.Fatalf("Dockerfile builds with golang:%s, go.mod says go %s", got[1], want[1])
	}
	if !strings.Contains(string(docker), `CMD ["/usr/local/bin/agencyd", "healthcheck"]`) {
		t.Fatal("the image has no HEALTHCHECK through agencyd healthcheck")
	}
}

type composeFile struct {
	Services map[string]struct {
		Profiles    []string          `yaml:"profiles"`
		Environment map[string]string `yaml:"environment"`
		Secrets     []string          `yaml:"secrets"`
		Command     []string          `yaml:"command"`
		Healthcheck struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
		DependsOn map[string]struct {
			Condition string `yaml:"condition"`
		} `yaml:"depends_on"`
	} `yaml:"services"`
	Secrets map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
}

// docker-compose.yml: the master key comes from a file made once (a compose
// secret), never generated per start; the sim profile's agencyd talks to
// the simulator and the other to Instantly, on separate Redis keys; every
// agencyd has a health check that works in the distroless image.
func TestComposeFile(t *testing.T) {
	data, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "${AGENCY_MASTER_KEY") {
		t.Fatal("the master key comes from the environment of `docker compose up`")
	}
	var c composeFile
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	keyFile := c.Secrets["agency_master_key"].File
	if keyFile == "" {
		t.Fatal("no agency_master_key secret file")
	}
	real, sim, simd := c.Services["agencyd"], c.Services["agencyd-sim"], c.Services["instantly-sim"]
	if !slices.Equal(real.Profiles, []string{"instantly"}) || !slices.Equal(sim.Profiles, []string{"sim"}) || !slices.Equal(simd.Profiles, []string{"sim"}) {
		t.Fatalf("profiles: agencyd %v, agencyd-sim %v, instantly-sim %v", real.Profiles, sim.Profiles, simd.Profiles)
	}
	if got := real.Environment["AGENCY_INSTANTLY_URL"]; got != "https://api.instantly.ai" {
		t.Errorf("agencyd talks to %q", got)
	}
	simPort := ""
	for i, a := range simd.Command {
		if a == "--addr" && i+1 < len(simd.Command) {
			addr := simd.Command[i+1]
			simPort = addr[strings.LastIndex(addr, ":")+1:]
		}
	}
	if got, want := sim.Environment["AGENCY_INSTANTLY_URL"], "http://instantly-sim:"+simPort; simPort == "" || got != want {
		t.Errorf("agencyd-sim talks to %q, want %q", got, want)
	}
	if sim.DependsOn["instantly-sim"].Condition != "service_healthy" {
		t.Error("agencyd-sim does not wait for a healthy simulator")
	}
	if real.Environment["AGENCY_REDIS_PREFIX"] == sim.Environment["AGENCY_REDIS_PREFIX"] {
		t.Error("the simulator's agencyd shares Redis keys with the real one")
	}
	for name, s := range map[string]struct {
		env     map[string]string
		secrets []string
		health  []string
	}{"agencyd": {real.Environment, real.Secrets, real.Healthcheck.Test}, "agencyd-sim": {sim.Environment, sim.Secrets, sim.Healthcheck.Test}} {
		if _, ok := s.env["AGENCY_MASTER_KEY"]; ok {
			t.Errorf("%s takes its master key from the environment", name)
		}
		if s.env["AGENCY_MASTER_KEY_FILE"] != "/run/secrets/agency_master_key" || !slices.Contains(s.secrets, "agency_master_key") {
			t.Errorf("%s: master key file %q, secrets %v", name, s.env["AGENCY_MASTER_KEY_FILE"], s.secrets)
		}
		if !slices.Equal(s.health, []string{"CMD", "/usr/local/bin/agencyd", "healthcheck"}) {
			t.Errorf("%s health check %v", name, s.health)
		}
	}
	if h := simd.Healthcheck.Test; len(h) < 3 || h[1] != "/usr/local/bin/agencyd" || h[2] != "healthcheck" || !slices.Contains(h, "/_sim/health") {
		t.Errorf("instantly-sim health check %v", h)
	}
	// The key file never reaches the image or the repository.
	for file, want := range map[string]string{".dockerignore": strings.TrimPrefix(keyFile, "./"), ".gitignore": "/" + strings.TrimPrefix(keyFile[:strings.LastIndex(keyFile, "/")+1], "./")} {
		ignore, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		covered := false
		for _, line := range strings.Split(string(ignore), "\n") {
			line = strings.TrimSpace(line)
			covered = covered || (line != "" && (strings.HasPrefix(want, line) || strings.HasPrefix(want, strings.TrimPrefix(line, "/"))))
		}
		if !covered {
			t.Errorf("%s does not exclude %s", file, want)
		}
	}
}
