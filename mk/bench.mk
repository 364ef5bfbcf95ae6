# Benchmarks (bench/): never part of `make test` — performance is measured here, not asserted.
#
#   make bench        3 interleaved rounds of ours vs the controller-runtime peer, the in-process
#                     pipeline (ns/op, callgrind instructions), and the ConfigMap lookup against
#                     the local control plane when its tools are built (make tools)
#   make bench-quick  the same JSON with 1 round and shorter steps
#   make bench-cm     the same as make bench, building the control plane's tools first if needed
#
# Results: build/bench/result.json and build/bench/table.md. BENCH_README=1 also writes the table
# into README.md ("Performance"). BENCH_ROUNDS=N overrides the number of rounds.
.PHONY: bench bench-quick bench-cm bench-bins

BENCH_DIR  := $(BUILD)/bench
BENCH_BINS := $(BENCH_DIR)/bin/loadgen $(BENCH_DIR)/bin/micro $(BENCH_DIR)/bin/peer
BENCH_ARGS = --build $(BUILD) $(if $(BENCH_ROUNDS),--rounds $(BENCH_ROUNDS)) \
             $(if $(BENCH_README),--readme)
# The harness and the load generator run on CPU 1; the server under test on CPU 0.
BENCH_RUN  = taskset -c 1 python3 bench/run.py $(BENCH_ARGS)
# With the control plane's tools built, the harness runs inside with-cluster.sh, which provides
# KUBECONFIG for the ConfigMap lookup figures; without them those figures are skipped.
BENCH_WRAP = $(if $(wildcard $(or $(FMW_TOOLS_DIR),$(BUILD)/tools)/stamp),tests/cluster/with-cluster.sh bench)

$(BENCH_DIR)/bin/loadgen: bench/loadgen.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(shell $(PKG_CONFIG) --libs openssl)

$(BENCH_DIR)/bin/micro: $(BUILD)/obj/bench/micro.o $(call pkglibs,admission kube podspec tmmem jmmem flinkconf memsize obs http1 base)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS) -lpthread

# The peer: Go modules from the module proxy into the usual module cache (outside the repo).
$(BENCH_DIR)/bin/peer: bench/peer/go.mod bench/peer/go.sum $(wildcard bench/peer/*.go)
	@mkdir -p $(@D)
	cd bench/peer && go build -trimpath -o $(abspath $@) .

# valgrind (instruction counts) and Go (the peer) come with the machine image; as root, a missing
# valgrind is installed from Debian's packages.
.PHONY: bench-deps
bench-deps:
	@command -v valgrind >/dev/null || { [ "$$(id -u)" -eq 0 ] && apt-get update -qq >/dev/null && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null; } || \
	    echo "bench: valgrind is missing; instruction counts will be skipped" >&2
	@command -v go >/dev/null || { echo "bench: the Go toolchain is needed for the peer" >&2; exit 1; }

bench-bins: all bench-deps $(BENCH_BINS)

bench: bench-bins pydeps
	@$(BENCH_WRAP) $(BENCH_RUN)

bench-quick: bench-bins pydeps
	@$(BENCH_WRAP) $(BENCH_RUN) --quick --rounds 1

bench-cm: bench-bins pydeps tools
	@tests/cluster/with-cluster.sh bench $(BENCH_RUN)
