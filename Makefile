# siphon-otel. The two commands a newcomer needs:
#   make run    build otelcol-siphon and sipproxy and run the demo on loopback
#   make test   everything the project tests
# Every target installs what it needs: Go modules, the collector builder
# (ocb) and, for tests, Debian packages (kamailio, sip-tester, prometheus, tmux ...).
#
# Plain `go test ./...` is the unit suite: hermetic, no peer, no built
# binary. The system tests (real peers, the built collector) carry the build
# tag `integration`, as opentelemetry-collector-contrib's do; the targets
# below run them by package, the collector's binary named by OTELCOL_SIPHON.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO ?= go
# One build cache for the distro and the tests: both build without cgo.
export CGO_ENABLED := 0

OCB_VERSION := v0.159.0
TOOLS_BIN := $(CURDIR)/.tools/bin
OCB := $(TOOLS_BIN)/builder
DISTRO_BIN := $(CURDIR)/distro/_build/otelcol-siphon
# Jaeger v2 (cmd/jaeger of jaegertracing/jaeger, pinned in tools/jaeger), the
# tracing backend the call-trace system tests read back from
JAEGER_BIN := $(TOOLS_BIN)/jaeger
APT_PACKAGES := kamailio sip-tester prometheus sipvicious rtpengine-daemon systemd iproute2 tmux
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

GO_SOURCES := $(shell find . -name '*.go' -not -path './distro/_build/*' -not -path './.tools/*' -not -path './tools/*') \
	go.mod go.sum builder-config.yaml $(wildcard distro/*.yaml)

FUZZ_TIME ?= 10s
# calls per configuration and round in the sipproxy benchmark
PROXY_BENCH_CALLS ?= 3000
# packets per HEP ingest run, records per CDR path run
HEP_BENCH_PACKETS ?= 1000000
CDR_BENCH_RECORDS ?= 100000
# interleaved rounds of every CDR setup; the median is reported
CDR_BENCH_ROUNDS ?= 3
# make bench-hep: the ref otelcol-siphon is compared with (issue 18's
# "today's main"), packets per run (350,000 = 50,000 calls), interleaved
# rounds (median reported), the UDP sender's rate
BENCH_BASE_HEP ?= 1e0aecb
HEP_COLLECTOR_PACKETS ?= 350000
HEP_COLLECTOR_ROUNDS ?= 3
HEP_BENCH_UDP_RATE ?= 50000
# built collectors by commit, shared by worktrees (bench/collector-at.sh)
SIPHON_BENCH_BIN_CACHE ?= $(CURDIR)/.bench/bin
export SIPHON_BENCH_BIN_CACHE
# the otelcol-siphon the CDR path is compared with, built at this ref in the
# same run (1e0aecb: main when issue 18 was filed); binaries built at a ref
# are kept in SIPHON_BENCH_BIN_CACHE (default .bench/bin), one per commit
CDR_BENCH_BASE ?= $(or $(BENCH_BASE),1e0aecb)
# samples of each codec micro-benchmark, for benchstat
BENCH_COUNT ?= 6
MICRO_BENCH := ./internal/hep ./internal/sipmsg ./internal/sipcorr ./internal/record/... ./internal/cdr ./internal/jsonvalid ./internal/mediaq
BENCHSTAT := $(GO) run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
# package:target pairs run by `make fuzz`
FUZZ_TARGETS := ./internal/hep:FuzzDecode ./internal/hep:FuzzStream ./internal/sipmsg:FuzzParse ./internal/sipmsg:FuzzHeader \
	./internal/sipcorr:FuzzCorrelate \
	./internal/mediaq:FuzzRTCPJSON ./internal/mediaq:FuzzXRVoIPMetrics ./internal/mediaq:FuzzVQReport ./internal/mediaq:FuzzRTPStat ./internal/mediaq:FuzzFromSIP \
	./internal/cdr:FuzzParse ./internal/record/cdrrecord:FuzzRoundTrip ./internal/jsonvalid:FuzzValid ./internal/syslogmsg:FuzzParse ./internal/syslogmsg:FuzzReader \
	./proxy/digest:FuzzVerify ./proxy/heptrace:FuzzFramer ./proxy/rtpengine:FuzzDecode ./connectors/sipkpiconnector:FuzzRecords ./connectors/sipcallconnector:FuzzRecords

# the system tests' build tag
INTEGRATION := -tags integration
# the system tiers
DISTRO_TESTS := ./distro/... ./deploy/... ./interop/... ./alerts/... ./dashboards/...
PROXY_E2E_TESTS := ./proxy/e2e/... ./proxy/rtpengine/...
E2E_TESTS := ./demo/... ./e2e/...
# the concurrent components, again under the race detector
RACE_TESTS := ./internal/... ./receivers/... ./processors/... ./exporters/... ./connectors/... ./proxy/...

BIN := $(CURDIR)/bin
# make run: calls per second of the demo's generator
RATE ?= 5

.PHONY: help run run-fleet test distro jaeger unit race fuzz interop proxy-e2e e2e bench bench-smoke bench-hep bench-cdr generate deps-go deps-apt clean

help:
	@echo "make run       the demo: otelcol-siphon, sipproxy and a call generator on loopback (RATE=5 calls/s; Ctrl-C stops it)"
	@echo "make run-fleet otelcol-siphon for a real SIPhon fleet on distro/siphon-fleet.yaml (SIPHON_* settings there)"
	@echo "make test      vet, unit (go test ./...), race, the system tests (-tags integration: distro, interop with"
	@echo "               Kamailio and sipp, sipproxy e2e, the appliance e2e), fuzz and the benchmarks once"
	@echo "make distro    build $(DISTRO_BIN) with ocb $(OCB_VERSION)"
	@echo "make jaeger    build $(JAEGER_BIN) (Jaeger v2, tools/jaeger) for the call-trace tests"
	@echo "make bench     the figures of BENCHMARKS.md into .bench/ (BENCH_BASE=<ref> compares the codecs with benchstat)"
	@echo "make bench-hep otelcol-siphon's CPU per HEP packet into sipkpi against BENCH_BASE_HEP=$(BENCH_BASE_HEP), built once"
	@echo "               (cached by commit in SIPHON_BENCH_BIN_CACHE), TCP and UDP (HEP_BENCH_UDP_RATE), $(HEP_COLLECTOR_ROUNDS) rounds"
	@echo "make bench-cdr the CDR path's goal (10,000 CDR/s batched into siphon_file and siphon_kafka) against CDR_BENCH_BASE"
	@echo "make generate  regenerate mdatagen code from metadata.yaml files and dashboards/*.json"

deps-go:
	$(GO) mod download

deps-apt:
	@missing=$$(for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:" $$missing; \
		$(SUDO) apt-get update -qq; \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(OCB):
	GOBIN=$(TOOLS_BIN) $(GO) install go.opentelemetry.io/collector/cmd/builder@$(OCB_VERSION)

$(DISTRO_BIN): $(OCB) $(GO_SOURCES)
	$(OCB) --config builder-config.yaml
	@touch $@

distro: $(DISTRO_BIN)

# Jaeger's collector is another release than ours (core v0.140): a module of
# its own, tools/jaeger, pins it (see tools/README.md).
$(JAEGER_BIN): tools/jaeger/go.mod tools/jaeger/go.sum
	cd tools/jaeger && $(GO) build -o $(JAEGER_BIN) github.com/jaegertracing/jaeger/cmd/jaeger
	@touch $@

jaeger: $(JAEGER_BIN)

$(BIN)/sipproxy $(BIN)/siphon-demo $(BIN)/sipladder &: $(GO_SOURCES)
	$(GO) build -o $(BIN)/sipproxy ./proxy/cmd/sipproxy
	$(GO) build -o $(BIN)/siphon-demo ./demo/cmd/siphon-demo
	$(GO) build -o $(BIN)/sipladder ./cmd/sipladder

# Jaeger is used when `make jaeger` built it, never built here: the first
# run stays as quick as it was.
run: deps-go $(DISTRO_BIN) $(BIN)/sipproxy $(BIN)/siphon-demo $(BIN)/sipladder
	$(BIN)/siphon-demo -collector $(DISTRO_BIN) -proxy $(BIN)/sipproxy -rate $(RATE) -jaeger $(JAEGER_BIN) -ladder $(BIN)/sipladder

run-fleet: deps-go $(DISTRO_BIN) $(BIN)/siphon-demo
	$(BIN)/siphon-demo -fleet -collector $(DISTRO_BIN)

# gofmt, vet with and without the system tests, and the hermetic unit suite.
unit: deps-go
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
		if [ -n "$$unformatted" ]; then echo "not gofmt-ed:" $$unformatted; exit 1; fi
	$(GO) vet ./...
	$(GO) vet $(INTEGRATION) ./...
	$(GO) test -count=1 -timeout 15m ./...

# The concurrent components again under the race detector (needs cgo).
race: deps-go
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 15m $(RACE_TESTS)

# The distro's configs on the built collector, the deployment files, the
# alert rules under promtool, and interop with Kamailio and sipp.
interop: deps-apt $(DISTRO_BIN) $(JAEGER_BIN)
	OTELCOL_SIPHON=$(DISTRO_BIN) JAEGER=$(JAEGER_BIN) $(GO) test $(INTEGRATION) -count=1 -timeout 15m $(DISTRO_TESTS)

# sipproxy, the real binary, against sipp, sipvicious, rtpengine and our
# hep and siphon_cdr receivers.
proxy-e2e: deps-apt
	$(GO) test $(INTEGRATION) -count=1 -timeout 15m $(PROXY_E2E_TESTS)

# The whole appliance end to end: the demo (otelcol-siphon, sipproxy, the
# call generator) with every call accounted for; sipp through sipproxy into
# otelcol-siphon, a real Prometheus evaluating alerts/ and every dashboard
# query, CDRs compared across file, HTTP, syslog and Kafka (kfake).
e2e: deps-apt $(DISTRO_BIN) $(JAEGER_BIN)
	OTELCOL_SIPHON=$(DISTRO_BIN) JAEGER=$(JAEGER_BIN) $(GO) test $(INTEGRATION) -count=1 -timeout 20m $(E2E_TESTS)

fuzz: deps-go
	@for pt in $(FUZZ_TARGETS); do \
		pkg=$${pt%%:*}; target=$${pt##*:}; \
		echo "fuzz $$pkg $$target for $(FUZZ_TIME)"; \
		out=$$($(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZ_TIME) $$pkg 2>&1) && { echo "$$out" | tail -2; continue; }; \
		echo "$$out" | tail -20; \
		if echo "$$out" | grep -q 'context deadline exceeded' && ! echo "$$out" | grep -q 'Failing input written'; then \
			echo "go's fuzz engine timed out a worker at the deadline (no failing input): running $$target again"; \
			$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZ_TIME) $$pkg; \
		else exit 1; fi; \
	done

test: unit race interop proxy-e2e e2e fuzz bench-smoke

# Every benchmark once at a tiny size, so that they keep working (each
# checks what it measures: every CDR written once, every call answered,
# no TCP packet lost); the figures of so small a run mean nothing.
bench-smoke: deps-apt $(DISTRO_BIN)
	$(GO) test -count=1 -run '^$$' -bench . -benchtime 100x ./internal/... ./receivers/... ./connectors/...
	BENCH_BASE= OTELCOL_SIPHON=$(DISTRO_BIN) HEP_BENCH_UDP_RATE=5000 $(GO) test $(INTEGRATION) -count=1 -run '^$$' -bench . -benchtime 700x -timeout 10m ./bench/
	PROXY_BENCH_ROUNDS=1 $(GO) test $(INTEGRATION) -count=1 -run '^$$' -bench . -benchtime 20x -timeout 10m ./proxy/e2e/

# The figures of BENCHMARKS.md, written to .bench/ (see BENCHMARKS.md for
# what each measures). BENCH_BASE=<git ref> also runs the codec
# micro-benchmarks at that ref and compares with benchstat.
bench: deps-go deps-apt $(DISTRO_BIN) $(OCB)
	mkdir -p .bench
	$(GO) test -run '^$$' -bench . -benchmem -count $(BENCH_COUNT) $(MICRO_BENCH) | tee .bench/micro.txt
	$(BENCHSTAT) .bench/micro.txt
	@if [ -n "$(BENCH_BASE)" ]; then \
		rm -rf .bench/base && git worktree add -f --detach .bench/base $(BENCH_BASE) >/dev/null && \
		cp internal/cdr/bench_test.go .bench/base/internal/cdr/ 2>/dev/null; \
		(cd .bench/base && $(GO) test -run '^$$' -bench . -benchmem -count $(BENCH_COUNT) $(MICRO_BENCH)) > .bench/micro-base.txt; \
		git worktree remove --force .bench/base; \
		$(BENCHSTAT) .bench/micro-base.txt .bench/micro.txt; \
	fi
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./receivers/... ./exporters/... ./connectors/... | tee .bench/components.txt
	$(GO) test $(INTEGRATION) -run '^$$' -bench HEPIngest -benchtime $(HEP_BENCH_PACKETS)x -count 1 ./bench/ | tee .bench/hep.txt
	base=$$(OCB=$(OCB) bench/collector-at.sh $(CDR_BENCH_BASE)) && \
	BENCH_BASE=$(CDR_BENCH_BASE) OTELCOL_SIPHON_BASE=$$base CDR_BENCH_ROUNDS=$(CDR_BENCH_ROUNDS) OTELCOL_SIPHON=$(DISTRO_BIN) $(GO) test $(INTEGRATION) -run '^$$' -bench CDRPath -benchtime $(CDR_BENCH_RECORDS)x -count 1 -timeout 180m ./bench/ | tee .bench/cdr.txt
	$(GO) test $(INTEGRATION) -run '^$$' -bench . -benchtime $(PROXY_BENCH_CALLS)x -count 1 -timeout 60m ./proxy/e2e/ | tee .bench/proxy.txt
	$(MAKE) bench-hep

# otelcol-siphon against BENCH_BASE_HEP (built once, cached by commit), HEP
# into sipkpi (and sipcall) over TCP and UDP, interleaved rounds: the
# figures of BENCHMARKS.md, HEP to KPIs. HEP_BENCH_SETUPS, HEP_BENCH_PROFILE:
# see bench/hep_collector_test.go.
bench-hep: deps-go $(DISTRO_BIN) $(OCB)
	mkdir -p .bench
	base=$$(OCB=$(OCB) bench/collector-at.sh $(BENCH_BASE_HEP)) && \
	OTELCOL_SIPHON=$(DISTRO_BIN) OTELCOL_SIPHON_BASE=$$base HEP_BENCH_ROUNDS=$(HEP_COLLECTOR_ROUNDS) \
		HEP_BENCH_UDP_RATE=$(HEP_BENCH_UDP_RATE) $(GO) test $(INTEGRATION) -count=1 -run '^$$' -bench HEPCollector \
		-benchtime $(HEP_COLLECTOR_PACKETS)x -timeout 120m ./bench/ | tee .bench/hep-collector.txt

# The CDR path's goal alone (issue 18): 10,000 CDR/s in requests of 100 into
# siphon_file (as shipped, and through the disk queue shipped before) and
# siphon_kafka through its disk queue, the otlp anchor beside them, the candidate ($(DISTRO_BIN)) against otelcol-siphon
# built at CDR_BENCH_BASE, rounds interleaved, medians and ratios.
bench-cdr: deps-go $(DISTRO_BIN) $(OCB)
	mkdir -p .bench
	base=$$(OCB=$(OCB) bench/collector-at.sh $(CDR_BENCH_BASE)) && \
	BENCH_BASE=$(CDR_BENCH_BASE) OTELCOL_SIPHON_BASE=$$base CDR_BENCH_ROUNDS=$(CDR_BENCH_ROUNDS) CDR_BENCH_SINKS=otlp,file,file-diskq,kafka CDR_BENCH_MODES=batch CDR_BENCH_PACES=10k \
		OTELCOL_SIPHON=$(DISTRO_BIN) $(GO) test $(INTEGRATION) -run '^$$' -bench CDRPath -benchtime $(CDR_BENCH_RECORDS)x -count 1 -timeout 90m ./bench/ | tee .bench/cdr-goal.txt

generate:
	cd tools && $(GO) mod download
	$(GO) generate ./receivers/... ./exporters/... ./processors/... ./connectors/... ./dashboards/... ./deploy/...

clean:
	rm -rf distro/_build .tools .state bin .bench
