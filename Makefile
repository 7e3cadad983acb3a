# The runner's build, run and test entry points. See README.md.
GO       ?= go
BIN      := bin/runner
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
SCENARIO ?= scenarios/direct.yaml
PACE     ?=
FUZZTIME ?= 30s
# Minimizing an input that finds new coverage is bounded, so that a run
# spends its time on new inputs (unbounded, one minimization of a shipped
# scenario took the whole minute).
FUZZMINIMIZE ?= 2s

.PHONY: build run test unit test-integration vet fuzz schema clean bench image image-push cluster-up cluster-down knative-images

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/runner

## run: run a scenario on the embedded (local) target
run: build
	./$(BIN) exec $(SCENARIO) $(if $(PACE),--pace $(PACE))

## test: the unit tests, then the integration tests against a real
## Kubernetes control plane (test-integration).
test: unit test-integration

## unit: vet and race-test the whole module, one package at a time (the
## load tests measure latency and must not compete for the two cores)
unit: vet
	$(GO) test -race -count=1 -p 1 ./...
	cd $(CLUSTER) && $(GO) vet ./cmd/hoststate ./cmd/nodeimage ./cmd/pause && $(GO) test -count=1 ./cmd/hoststate

vet:
	$(GO) vet ./...

## fuzz: run each fuzz target for FUZZTIME
fuzz:
	$(GO) test ./scenario -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE)
	$(GO) test ./scenario -run '^$$' -fuzz '^FuzzValues$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE)
	$(GO) test ./scenario -run '^$$' -fuzz '^FuzzSet$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE)
	$(GO) test ./pace -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE)
	$(GO) test ./results -run '^$$' -fuzz '^FuzzParseThreshold$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE)

## schema: regenerate scenario.schema.json, matrix.schema.json and the
## delivery and twin blocks of the Knative charts' values.schema.json from
## the Go types
schema: build
	./$(BIN) schema > scenario.schema.json
	./$(BIN) schema --matrix > matrix.schema.json
	$(GO) test ./twins -run '^TestChartValueSchemasAreCurrent$$' -count=1 -update

clean:
	rm -rf bin

## image: the runner's OCI image for linux/amd64 and linux/arm64, with no
## container engine (internal/mkimage): static binaries, a non-root user,
## the charts and scenarios in /usr/share/runner. Prints its digest; the same
## commit gives the same digest. Written to bin/image/oci (an OCI layout) and
## bin/image/runner.oci.tar.
IMAGE_DIR       := bin/image
IMAGE_PLATFORMS := amd64 arm64
image:
	@for arch in $(IMAGE_PLATFORMS); do \
	  echo "building the runner for linux/$$arch"; \
	  CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" \
	    -o $(IMAGE_DIR)/linux-$$arch/runner ./cmd/runner || exit 1; \
	done
	$(GO) run ./internal/mkimage -out $(IMAGE_DIR) -version $(VERSION) \
	  -revision "$$(git rev-parse HEAD 2>/dev/null)" -created "$$(git log -1 --format=%ct 2>/dev/null || echo 0)" \
	  $(foreach arch,$(IMAGE_PLATFORMS),-binary linux/$(arch)=$(IMAGE_DIR)/linux-$(arch)/runner)

## image-push: push the image make image built to IMAGE (registry/repo:tag),
## with the credentials of docker login or podman login
image-push:
	@test -n "$(IMAGE)" || { echo "make image-push IMAGE=registry/repository:tag"; exit 2; }
	$(GO) run ./internal/mkimage -out $(IMAGE_DIR) -push $(IMAGE)

## bench: the load generator's highest held pace, CPU per event and memory,
## against vegeta in the same run (about 10 minutes)
bench:
	$(GO) test -run '^$$' -bench . -benchtime 5x ./loadgen ./measure ./results ./scenario
	$(GO) build -o bin/loadbench ./internal/loadbench
	./bin/loadbench $(BENCHFLAGS)

## cluster-up: a real Kubernetes control plane for integration tests, with
## two simulated nodes and one real node running real containers
## (test/cluster; REAL_NODE=0 leaves the real node out). The runner's image
## (make image) is loaded into the real node. The first build takes
## minutes; the binaries are kept in test/cluster/bin, so a rerun starts in
## seconds.
CLUSTER     := test/cluster
CLUSTER_BIN := $(CLUSTER)/bin
KWOK        := sigs.k8s.io/kwok/cmd/kwok@v0.8.0 sigs.k8s.io/kwok/cmd/kwokctl@v0.8.0
# The version the control plane and the kubelet report, as Kubernetes' own
# build stamps it.
K8S_VERSION := -X k8s.io/component-base/version.gitVersion=v1.37.2 -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37
# The image the runner asks for by default (--agent-image), under which
# make cluster-up loads make image's archive into the real node.
RUNNER_IMAGE := ghcr.io/perfrunner/runner:$(VERSION)
REAL_NODE    ?= 1
export REAL_NODE

$(CLUSTER_BIN)/.binaries: $(CLUSTER)/go.mod $(CLUSTER)/go.sum $(wildcard $(CLUSTER)/cmd/*/*.go)
	cd $(CLUSTER) && $(GO) build -ldflags "$(K8S_VERSION)" -o bin/ ./cmd/...
	cd $(CLUSTER) && CGO_ENABLED=0 $(GO) build -o bin/pause ./cmd/pause
	touch $@

$(CLUSTER_BIN)/.kwok:
	GOBIN=$(CURDIR)/$(CLUSTER_BIN) $(GO) install $(KWOK)
	touch $@

## knative-images: the Knative Operator and Knative Eventing 1.23 for the
## real node, built from source (test/knative pins knative.dev/operator
## and knative.dev/eventing; no registry is reachable here): one image per
## command, the operator's chart from its module, and the flags that point
## scenarios/platform/knative-eventing.yaml at them (test/knative/build.sh).
KNATIVE     := test/knative
KNATIVE_BIN := $(KNATIVE)/bin
$(KNATIVE_BIN)/.images: $(KNATIVE)/go.mod $(KNATIVE)/go.sum $(KNATIVE)/build.sh $(CLUSTER_BIN)/.binaries
	$(KNATIVE)/build.sh
	touch $@
knative-images: $(KNATIVE_BIN)/.images

CLUSTER_DEPS := $(CLUSTER_BIN)/.binaries $(CLUSTER_BIN)/.kwok $(if $(filter 0,$(REAL_NODE)),,image build $(KNATIVE_BIN)/.images)
CLUSTER_UP   := RUNNER_IMAGE=$(RUNNER_IMAGE) RUNNER_IMAGE_ARCHIVE=$(CURDIR)/$(IMAGE_DIR)/runner.oci.tar \
  KNATIVE_IMAGES=$(CURDIR)/$(KNATIVE_BIN)/images $(CLUSTER)/up.sh

cluster-up: $(CLUSTER_DEPS)
	$(CLUSTER_UP)

## test-integration: the tests tagged integration, against the test cluster
## (started here, building it the first time, and stopped after; the host
## is then checked against what it was before).
TEST_KUBECONFIG := $(CURDIR)/$(CLUSTER)/.work/kubeconfig
test-integration: $(CLUSTER_DEPS)
	$(CLUSTER_UP)
	RUNNER_TEST_KUBECONFIG=$(TEST_KUBECONFIG) RUNNER_TEST_REAL_NODE=$(REAL_NODE) \
	  RUNNER_TEST_KNATIVE=$(CURDIR)/$(KNATIVE_BIN)/platform.env \
	  RUNNER_TEST_BINARY=$(CURDIR)/$(BIN) RUNNER_TEST_IMAGE=$(RUNNER_IMAGE) RUNNER_TEST_IMAGE_LAYOUT=$(CURDIR)/$(IMAGE_DIR)/oci \
	  $(GO) test -tags integration -count=1 -p 1 -timeout 30m ./kube/ ./test/integration/; \
	  status=$$?; $(CLUSTER)/down.sh || status=1; exit $$status

## cluster-down: stop the test cluster and remove its state
cluster-down:
	$(CLUSTER)/down.sh
