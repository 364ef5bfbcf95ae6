# make asan: the unit, server and end-to-end suites with every object of ours built by clang with
# AddressSanitizer (LeakSanitizer included) and UndefinedBehaviorSanitizer. Any report fails the
# suite, a leak too. Debian's libraries stay as they are.
#
#   make asan-unit   the Criterion unit tests (scripts/run-unit.sh greps the reports, since a
#                    report in a Criterion child does not fail its test)
#   make asan-e2e    tests/e2e (and the admission suite's CLI and server checks) with the
#                    sanitized flink-memory-webhook and flink-memory; reports of every sanitized
#                    process are collected through ASAN_OPTIONS/UBSAN_OPTIONS log_path
#   make asan        both, plus the server suite's sanitized run (server-tests-asan, mk/server.mk)
#                    unless `make test` runs that suite on its own anyway
.PHONY: asan asan-unit asan-e2e asan-bins

ASAN_DIR      ?= $(BUILD)/asan
ASAN_SANITIZE := -fsanitize=address,undefined -fno-sanitize-recover=undefined
ASAN_CFLAGS   := -std=c11 -g -O1 -fno-omit-frame-pointer $(ASAN_SANITIZE) \
                 $(filter-out -Werror,$(WARNINGS)) $(DEP_CFLAGS)
ASAN_PKG_OBJS := $(patsubst %.c,$(ASAN_DIR)/obj/%.o,$(wildcard $(foreach p,$(PACKAGES),pkg/$(p)/*.c)))
ASAN_LIB      := $(ASAN_DIR)/libfmw-asan.a
ASAN_BINS     := $(ASAN_DIR)/bin/flink-memory $(ASAN_DIR)/bin/flink-memory-webhook
ASAN_UNITS    := $(foreach p,$(UNIT_PKGS),$(ASAN_DIR)/tests/unit/$(p))
ASAN_LDLIBS   := $(DEP_LIBS) -lpthread -lm

$(ASAN_DIR)/obj/%.o: %.c
	@mkdir -p $(@D)
	@clang $(CPPFLAGS) $(ASAN_CFLAGS) -MMD -MP -c -o $@ $<

$(ASAN_LIB): $(ASAN_PKG_OBJS)
	@rm -f $@
	@$(AR) rcs $@ $^

# Each program: the objects of its cmd/ directory, then the packages.
define asan_bin_rules
$(ASAN_DIR)/bin/$(1): $$(patsubst %.c,$(ASAN_DIR)/obj/%.o,$$(wildcard cmd/$(1)/*.c)) $(ASAN_LIB)
	@mkdir -p $$(@D)
	clang $(ASAN_SANITIZE) -o $$@ $$^ $(ASAN_LDLIBS)
endef
$(foreach b,flink-memory flink-memory-webhook,$(eval $(call asan_bin_rules,$(b))))

define asan_unit_rules
$(ASAN_DIR)/tests/unit/$(1): $$(patsubst %.c,$(ASAN_DIR)/obj/%.o,$$(wildcard tests/unit/$(1)/*.c)) \
                             $(ASAN_DIR)/obj/tests/unit/support.o $(ASAN_LIB)
	@mkdir -p $$(@D)
	clang $(ASAN_SANITIZE) -o $$@ $$^ $(ASAN_LDLIBS) $(CRITERION_LIBS)
endef
$(foreach p,$(UNIT_PKGS),$(eval $(call asan_unit_rules,$(p))))

.PRECIOUS: $(ASAN_DIR)/obj/%.o

asan-bins:
	@scripts/install-deps.sh
	@$(MAKE) --no-print-directory $(ASAN_BINS)

# The unit tests read their data relative to the repository root, as the normal run does.
asan-unit:
	@scripts/install-deps.sh
	@$(MAKE) --no-print-directory $(ASAN_UNITS)
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	    scripts/run-unit.sh $(ASAN_UNITS)

asan-e2e: asan-bins pydeps tools $(ASAN_DIR)/tests/kube-get
	@tests/cluster/with-cluster.sh asan-e2e tests/asan/run-e2e.sh $(ASAN_DIR)

CLUSTER_SUITES += asan

$(ASAN_DIR)/tests/kube-get: $(ASAN_DIR)/obj/tests/kube/kubeget.o $(ASAN_LIB)
	@mkdir -p $(@D)
	clang $(ASAN_SANITIZE) -o $@ $^ $(ASAN_LDLIBS)

$(ASAN_DIR)/tests/kube-cache-race: $(ASAN_DIR)/obj/tests/kube/cacherace.o $(ASAN_LIB)
	@mkdir -p $(@D)
	clang $(ASAN_SANITIZE) -o $@ $^ $(ASAN_LDLIBS)

# pkg/kube's client against the scripted servers of tests/kube, and its cache's race, sanitized.
asan-kube: asan-bins pydeps
	@$(MAKE) --no-print-directory $(ASAN_DIR)/tests/kube-get $(ASAN_DIR)/tests/kube-cache-race \
	    $(BUILD)/tests/libslowdns.so
	@ASAN_OPTIONS=detect_leaks=1 KUBE_GET=$(ASAN_DIR)/tests/kube-get KUBE_GET_SANITIZED=1 \
	    KUBE_CACHE_RACE=$(ASAN_DIR)/tests/kube-cache-race \
	    KUBE_SLOWDNS=$(BUILD)/tests/libslowdns.so python3 -m pytest -q tests/kube

asan: asan-unit asan-bins asan-kube pydeps tools
	@if [[ " $${FMW_RUN_SUITES:-} " == *" server-tests-asan "* ]]; then \
	    echo "asan: server suite: run by make test as server-tests-asan"; \
	else \
	    $(MAKE) --no-print-directory server-tests-asan || exit 1; \
	fi
	@tests/cluster/with-cluster.sh asan tests/asan/run-e2e.sh $(ASAN_DIR)

TEST_SUITES += asan

-include $(shell find $(ASAN_DIR)/obj -name '*.d' 2>/dev/null)
