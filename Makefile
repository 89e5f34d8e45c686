# mcpauthz: targets a newcomer can guess.
GO       ?= go
BIN      ?= bin/mcpauthz
PKGS     ?= ./...
GOBIN    ?= $(shell $(GO) env GOPATH)/bin
BUF_VERSION            ?= v1.75.0
# buf comes prebuilt from npm (@bufbuild/buf, the Buf project's own
# package) into .tools/ when npm is there: compiling it from the Go module
# proxy takes minutes on two cores. Without npm it is built with go install.
BUF_NPM_DIR ?= $(CURDIR)/.tools/buf
BUF         ?= $(shell test -x $(BUF_NPM_DIR)/node_modules/.bin/buf && echo $(BUF_NPM_DIR)/node_modules/.bin/buf || echo $(GOBIN)/buf)
PROTOC_GEN_GO_VERSION  ?= v1.36.12
PROTOC_GEN_GO_GRPC_VERSION ?= v1.5.1
# What `mcpauthz version` prints: the commit also comes from Go's VCS
# stamp when the build has one (GOFLAGS=-buildvcs=false drops it).
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS  ?= -X main.version=$(VERSION) -X main.buildCommit=$(COMMIT)

.PHONY: help image buf-breaking build test test-short conformance bench bench-growth bench-smoke lint fmt vet generate check-generated tools run demo load load-scale fuzz clean

build: ## build the binary into bin/ (version and commit stamped in)
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/mcpauthz

IMAGE ?= ghcr.io/mcpauthz/mcpauthz
DOCKER ?= docker

image: ## build the container image $(IMAGE):$(VERSION) and :latest (Dockerfile: static binary on distroless, non-root)
	$(DOCKER) build --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) -t $(IMAGE):$(VERSION) -t $(IMAGE):latest .

test: ## the whole test suite, with the race detector, plus a one-pass run of every benchmark
	$(GO) test -race -count=1 $(PKGS)
	$(GO) test -run '^$$' -bench . -benchtime=1x -short $(PKGS)

test-short: ## quick tests without -race
	$(GO) test -count=1 $(PKGS)

conformance: ## the MCP conformance suite against the Go SDK's server, directly and through mcpauthz proxy, and the table of docs/conformance.md (needs npm ci --prefix e2e/conformance)
	$(GO) test -count=1 -v -run '^TestConformance$$' ./cmd/mcpauthz/

bench: ## every Go benchmark with allocations (see docs/performance.md)
	$(GO) test -run '^$$' -bench . -benchmem -count=1 $(PKGS)

GROWTH_PKGS  ?= ./decision/ ./decision/token/ ./bundles/ ./cmd/mcpauthz/
GROWTH_FLAGS ?= -count 3
GROWTH_OUT   ?= bench-growth.txt

bench-growth: ## the growth benchmarks (BenchmarkGrowth*, every size) into GROWTH_OUT, then the growth table (docs/performance.md)
	$(GO) test -p 1 -run '^$$' -bench '^BenchmarkGrowth' -benchmem -timeout 60m $(GROWTH_FLAGS) $(GROWTH_PKGS) > $(GROWTH_OUT)
	$(GO) run ./cmd/mcpauthz-bench --growth < $(GROWTH_OUT)

FUZZTIME ?= 10m
# package:target of every fuzz target of a parser or of the Check path.
FUZZ_TARGETS ?= ./decision/mcp:FuzzParse ./decision/mcp:FuzzDifferential ./decision/mcp:FuzzExactDouble ./decision/mcp:FuzzReadJSON \
	./transport/extauthz:FuzzDecodeCheck ./transport/extauthz:FuzzCheckAnswer ./transport/extauthz:FuzzRateLimitAnswer ./decision/token:FuzzVerify \
	./decision/token:FuzzCheckMembers ./decision:FuzzDecide ./decision:FuzzDecideHeaders ./internal/redact:FuzzQuery ./internal/redact:FuzzString \
	./internal/decisionlog:FuzzReadEvents ./internal/decisionlog:FuzzAppendJSON ./internal/requestfile:FuzzReadFrom \
	./transport/extmcp:FuzzEnvelope ./transport/extmcp:FuzzCheck \
	./decision:FuzzTraceContext \
	./decision/toolpin:FuzzTools ./decision/toolpin:FuzzCanonical \
	./decision:FuzzListEventStream ./transport/authzen:FuzzDecode \
	./decision/dpop:FuzzParse ./decision/confirm:FuzzOpen ./decision/serverversions:FuzzLearnAnswer \
	./decision/results:FuzzRedact

fuzz: ## run each fuzz target for FUZZTIME (default 10m), one after another, on one core each; findings land in testdata/fuzz
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; name=$${t##*:}; \
	  echo "== $$name ($$pkg, $(FUZZTIME))"; \
	  $(GO) test $$pkg -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -parallel 1 >.fuzz.log 2>&1; rc=$$?; \
	  tail -3 .fuzz.log; rm -f .fuzz.log; [ $$rc = 0 ] || exit $$rc; \
	done

fmt: ## gofmt every Go file
	gofmt -w $$(git ls-files '*.go')

vet: ## go vet
	$(GO) vet $(PKGS)

lint: vet tools ## gofmt, go vet, buf lint and buf breaking against main
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo 'gofmt needed'; exit 1)
	$(BUF) lint
	@$(MAKE) --no-print-directory buf-breaking

# buf breaking compares with main, and only once main holds .proto files (a
# clean CI clone may only have origin/main).
buf-breaking: ## buf breaking against main (part of lint)
	@ref=''; \
	if git rev-parse --verify -q main >/dev/null; then ref=main; against='.git#branch=main'; \
	elif git rev-parse --verify -q origin/main >/dev/null; then ref=origin/main; against='.git#ref=refs/remotes/origin/main'; fi; \
	if [ -n "$$ref" ] && git ls-tree -r --name-only "$$ref" -- proto/ | grep -q '\.proto$$'; then \
	  echo "buf breaking against $$ref"; $(BUF) breaking --against "$$against"; \
	else echo 'buf breaking: main has no .proto files yet; skipped'; fi

tools: ## install buf (npm, else the Go module proxy) and the protoc plugins (Go module proxy)
	@if [ ! -x $(BUF_NPM_DIR)/node_modules/.bin/buf ] && [ ! -x $(GOBIN)/buf ]; then \
	  if command -v npm >/dev/null; then \
	    mkdir -p $(BUF_NPM_DIR) && npm install --prefix $(BUF_NPM_DIR) --no-audit --no-fund --silent @bufbuild/buf@$(BUF_VERSION:v%=%); \
	  else $(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION); fi; \
	fi
	@test -x $(GOBIN)/protoc-gen-go || $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	@test -x $(GOBIN)/protoc-gen-go-grpc || $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

generate: tools ## regenerate the Go code of proto/
	PATH=$(GOBIN):$$PATH $(BUF) generate

check-generated: generate ## fail when the committed generated code is stale
	@git diff --exit-code -- proto/ || (echo 'generated code is stale: run make generate and commit'; exit 1)
	@test -z "$$(git status --porcelain -- proto/)" || (git status --porcelain -- proto/; echo 'untracked generated files'; exit 1)

run: build ## serve examples/config/dev.yaml: the example bundle examples/bundles/parameter-rules, trusting development tokens
	$(BIN) serve --config examples/config/dev.yaml

demo: build ## mint a dev token and print two decisions (allowed and denied by an argument rule)
	./examples/demo.sh

LOAD_FLAGS ?= --concurrency 1,32 --duration 10s

load: ## load harness: mcpauthz (in process) and a no-op ext_authz server over loopback gRPC (see docs/performance.md)
	$(GO) run ./cmd/mcpauthz-bench $(LOAD_FLAGS)

SCALE_FLAGS ?= --server-cpus 0 --client-cpus 1 --concurrency 1,32,128,512 --duration 20s

load-scale: ## load harness at scale: mcpauthz serve and the no-op server in processes pinned to --server-cpus, RSS and GC share (SCALE_FLAGS)
	$(GO) run ./cmd/mcpauthz-bench --processes $(SCALE_FLAGS)

clean: ## remove bin/
	rm -rf bin/

help: ## list the targets and what they do
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
