# The agency control plane for Instantly workspaces.
# `make run` serves on the embedded backend; `make test` is what CI runs.

GO        ?= go
BUF       := $(GO) tool -modfile=tools/go.mod buf
BASELINE  := .ci/buf-baseline.binpb
# Fuzz budgets are execution counts, not durations: Go 1.26's coordinator can
# report a spurious "context deadline exceeded" when a -fuzztime duration ends
# mid-call (go.dev/issue/75804, fixed in Go 1.27). FUZZTIME=30s overrides all three.
FUZZTIME  ?=
FUZZ_LABELS    ?= 500000x
FUZZ_PAGETOKEN ?= 300000x
FUZZ_REST      ?= 6000x
OPENAPI   := gen/openapiv3/agency.openapi.json

.PHONY: all run sim agencyctl demo demo-stop build generate lint fmt vet test unit drift breaking baseline ensure-redis fuzz fuzz-corpus bench bench-onboard bench-plan bench-scim clean

all: build

## run: serve agencyd on 127.0.0.1:9090 (gRPC) and :8080 (REST) with the embedded in-memory backend
run:
	$(GO) run ./cmd/agencyd

## sim: serve the Instantly simulator on 127.0.0.1:8089
sim:
	$(GO) run ./cmd/instantly-sim

## agencyctl: build the operator's command line into bin/agencyctl
agencyctl:
	$(GO) build -o bin/agencyctl ./cmd/agencyctl

## demo: a first look in under a minute: simulator (50 workspaces), agencyd (embedded), import, onboarding, access matrix, plan of examples/agency.yaml
demo:
	$(GO) build -o bin/ ./cmd/agencyd ./cmd/instantly-sim ./cmd/agencyctl
	bash examples/demo.sh

## demo-stop: stop the servers make demo left running
demo-stop:
	bash examples/demo.sh stop

build:
	$(GO) build ./...

## generate: regenerate gen/ from proto/: code, the OpenAPI 3.1 document (tools/openapi3) and its Go test client
generate:
	$(BUF) format -w
	$(BUF) generate
	$(BUF) generate --template buf.gen.longrunning.yaml
	$(GO) -C tools run ./openapi3 -o ../$(OPENAPI) ../gen/openapiv2/agency.swagger.json ../gen/openapiv2/google/longrunning/operations.swagger.json
	$(GO) tool -modfile=tools/go.mod oapi-codegen -config tools/openapi3/oapi-codegen.yaml $(OPENAPI)

## lint: buf lint, buf format, go vet, gofmt, and the OpenAPI document (Redocly, Spectral)
lint: vet openapi-lint
	$(BUF) lint
	$(BUF) format -d --exit-code
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^gen/')); \
	  if [ -n "$$out" ]; then echo "gofmt needed (run gofmt -w):"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

## openapi-lint: Redocly (recommended-strict) and Spectral (spectral:oas) on the served OpenAPI document; installs them on first use (.ci/openapi)
openapi-lint:
	@./.ci/openapi/lint.sh $(OPENAPI)

## unit: go test -race over every package (needs redis-server or REDIS_URL)
unit: ensure-redis
	$(GO) test -race -count=1 ./...

## drift: fail when gen/ differs from what proto/ generates
drift: generate
	@git add -N gen && git diff --exit-code --stat -- gen || \
	  { echo "generated code is stale: run 'make generate' and commit gen/"; exit 1; }

## breaking: buf breaking against the committed baseline image
breaking:
	$(BUF) breaking --against $(BASELINE)

## baseline: refresh the buf breaking baseline (deliberately, on release)
baseline:
	$(BUF) build -o $(BASELINE)

## bench: the fan-out benchmark (3 replicas on one Redis vs. the simulator's limits, plus baselines)
bench: ensure-redis
	$(GO) run ./cmd/agencybench $(BENCHFLAGS)

## bench-onboard: one OnboardMembers of 10 people into 100 workspaces (3 replicas, Instantly's limits, 150 ms latency), then 20 × 500
bench-onboard: ensure-redis
	$(GO) run ./cmd/agencybench --onboard --people 10 --workspaces 100 --latency 150ms $(BENCHFLAGS)
	$(GO) run ./cmd/agencybench --onboard --people 20 --workspaces 500 --latency 150ms $(BENCHFLAGS)

## bench-scim: one person offboarded from 300 workspaces by a SCIM deactivation (3 replicas, Instantly's limits, 150 ms latency)
bench-scim: ensure-redis
	$(GO) run ./cmd/agencybench --scim-offboard $(BENCHFLAGS)

## bench-plan: one desired-state CreatePlan of 20 declared people over 300 workspaces (Instantly's limits, 150 ms latency)
bench-plan: ensure-redis
	$(GO) run ./cmd/agencybench --plan $(BENCHFLAGS)

## mutation: mutation testing (gremlins, each package's own tests, subpackages excluded) of the core packages; fails below MUTATION_EFFICACY %
# -count=1: gremlins times each mutant against the coverage run, which must not come from the test cache.
# Mutants build into a Go cache of their own, removed at the end: a run leaves several GB of one-off
# packages (about 8 GB, 6 of them for internal/instantly) that would otherwise sit in the shared cache for days.
MUTATION_PKGS     ?= internal/fanout internal/ratelimit internal/ratelimit/memlimit internal/ratelimit/redislimit internal/authz internal/vault internal/labels internal/pagetoken internal/instantly
MUTATION_EFFICACY ?= 90
mutation: ensure-redis
	@cache=$$(mktemp -d); trap 'rm -rf "$$cache"' EXIT; \
	fail=; for p in $(MUTATION_PKGS); do \
	  echo "== $$p"; \
	  GOCACHE=$$cache GOFLAGS=-count=1 $(GO) tool -modfile=tools/go.mod gremlins unleash ./$$p -E / \
	    --timeout-coefficient 5 --threshold-efficacy $(MUTATION_EFFICACY) -S lt $(MUTATIONFLAGS) || fail="$$fail $$p"; \
	done; \
	if [ -n "$$fail" ]; then echo "mutation efficacy below $(MUTATION_EFFICACY)% in:$$fail"; exit 1; fi

## fuzz: run each fuzz target for its execution budget (label selectors, page tokens, REST bodies)
fuzz: ensure-redis
	$(GO) test ./internal/labels -run '^$$' -fuzz FuzzParse -fuzztime $(or $(FUZZTIME),$(FUZZ_LABELS))
	$(GO) test ./internal/pagetoken -run '^$$' -fuzz FuzzDecode -fuzztime $(or $(FUZZTIME),$(FUZZ_PAGETOKEN))
	$(GO) test ./internal/e2e -run '^$$' -fuzz FuzzRESTBody -fuzztime $(or $(FUZZTIME),$(FUZZ_REST))

## fuzz-corpus: copy what fuzzing found into testdata/ (commit it)
fuzz-corpus:
	@for t in internal/labels:FuzzParse internal/pagetoken:FuzzDecode internal/e2e:FuzzRESTBody; do \
	  d=$${t%%:*}; n=$${t##*:}; src="$$($(GO) env GOCACHE)/fuzz/github.com/agencyplane/agencyplane/$$d/$$n"; \
	  mkdir -p $$d/testdata/fuzz/$$n; [ -d "$$src" ] && cp -n "$$src"/* $$d/testdata/fuzz/$$n/ || true; done

ensure-redis:
	@./.ci/ensure-redis.sh

## test: everything CI checks
test: lint unit drift breaking fuzz

clean:
	$(GO) clean -testcache
