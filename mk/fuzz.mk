# libFuzzer targets (tests/fuzz/): our packages built with clang coverage + ASan + UBSan, linked
# with each driver. jansson, libyaml, libevent and OpenSSL stay the uninstrumented Debian
# libraries: the point is our code.
#
#   make fuzz-build     the targets, in $(FUZZ_DIR)/bin
#   make fuzz-smoke     replays the committed corpus and the seeds from the fixtures, then fuzzes
#                       each target FUZZ_SMOKE_SECONDS (30), then runs tests/fuzz/structural.py
#                       as long; part of `make test`
#   make fuzz           the same with FUZZ_SECONDS (600) per target; the corpus found is kept in
#                       $(FUZZ_DIR)/runs/<target> and reused by the next run
#
# FUZZ_TARGETS="http admission" limits the targets. A crash leaves its input in
# $(FUZZ_DIR)/artifacts/<target>/; copy it into tests/fuzz/corpus/<target>/ once fixed, so that
# every later run replays it.
.PHONY: fuzz fuzz-smoke fuzz-build

FUZZ_DIR          ?= $(BUILD)/fuzz
FUZZ_ALL          := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_TARGETS      ?= $(FUZZ_ALL)
FUZZ_SMOKE_SECONDS ?= 30
FUZZ_SECONDS      ?= 600
FUZZ_SANITIZE     := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS       := -std=c11 -g -O1 -fno-omit-frame-pointer $(FUZZ_SANITIZE) \
                     $(filter-out -Werror,$(WARNINGS)) $(DEP_CFLAGS)
FUZZ_PKG_SRCS     := $(wildcard $(foreach p,$(PACKAGES),pkg/$(p)/*.c))
FUZZ_PKG_OBJS     := $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(FUZZ_PKG_SRCS))
FUZZ_BINS         := $(foreach t,$(FUZZ_ALL),$(FUZZ_DIR)/bin/fuzz_$(t))

$(FUZZ_DIR)/obj/pkg/%.o: pkg/%.c
	@mkdir -p $(@D)
	@clang $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

$(FUZZ_DIR)/obj/tests/fuzz/%.o: tests/fuzz/%.c
	@mkdir -p $(@D)
	@clang $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

$(FUZZ_DIR)/libfmw-fuzz.a: $(FUZZ_PKG_OBJS)
	@rm -f $@
	@$(AR) rcs $@ $^

$(FUZZ_DIR)/bin/fuzz_%: $(FUZZ_DIR)/obj/tests/fuzz/fuzz_%.o $(FUZZ_DIR)/libfmw-fuzz.a
	@mkdir -p $(@D)
	clang $(FUZZ_SANITIZE) -fsanitize=fuzzer -o $@ $^ $(DEP_LIBS) -lpthread -lm

.PRECIOUS: $(FUZZ_DIR)/obj/tests/fuzz/%.o

# install-deps.sh is quick when nothing is missing, and brings the clang runtimes (libFuzzer,
# sanitizers) that deps-check does not look for.
fuzz-build:
	@scripts/install-deps.sh
	@$(MAKE) --no-print-directory $(FUZZ_BINS)

# Then the structure-aware admission fuzzer (tests/fuzz/structural.py) through the sanitized CLI
# of mk/asan.mk, for the same time.
fuzz-smoke: fuzz-build pydeps asan-bins
	@tests/fuzz/run.sh $(FUZZ_DIR) $(FUZZ_SMOKE_SECONDS) $(FUZZ_TARGETS)
	@python3 tests/fuzz/structural.py --seconds $(FUZZ_SMOKE_SECONDS) --out $(FUZZ_DIR)/structural

fuzz: fuzz-build pydeps asan-bins
	@tests/fuzz/run.sh $(FUZZ_DIR) $(FUZZ_SECONDS) $(FUZZ_TARGETS)
	@python3 tests/fuzz/structural.py --seconds $(FUZZ_SECONDS) --out $(FUZZ_DIR)/structural

TEST_SUITES += fuzz-smoke

-include $(shell find $(FUZZ_DIR)/obj -name '*.d' 2>/dev/null)
