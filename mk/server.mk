# pkg/server test daemon and suite (tests/server/), plus what the obs unit tests need to link.
#
#   make server-tests        the TLS server suite against build/tests/server-testd
#   make server-tests-asan   the same suite against an ASan+UBSan build of the daemon; fails on
#                            any sanitizer report, leaks included
.PHONY: server-tests server-tests-asan

SERVER_TESTD      := $(BUILD)/tests/server-testd
SERVER_TESTD_ASAN := $(BUILD)/tests/server-testd-asan
SERVER_LIBS       := $(call pkglibs,server obs http1 base)
SERVER_SRCS       := $(wildcard pkg/server/*.c pkg/obs/*.c pkg/http1/*.c pkg/base/*.c) \
                     tests/server/testd.c

$(SERVER_TESTD): $(BUILD)/obj/tests/server/testd.o $(SERVER_LIBS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS) -lpthread

# One compiler run over the sources: sanitizers must instrument every object, so this build
# shares no objects with the normal one.
$(SERVER_TESTD_ASAN): $(SERVER_SRCS) $(wildcard pkg/server/*.h pkg/obs/*.h pkg/http1/*.h pkg/base/*.h)
	@mkdir -p $(@D)
	clang $(CPPFLAGS) -std=c11 -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
	    -fno-sanitize-recover=undefined $(WARNINGS) $(DEP_CFLAGS) -o $@ $(SERVER_SRCS) \
	    $(DEP_LIBS) -lpthread -lm

server-tests: $(SERVER_TESTD)
	python3 tests/server/test_server.py --testd $(SERVER_TESTD)

server-tests-asan: $(SERVER_TESTD_ASAN)
	python3 tests/server/test_server.py --testd $(SERVER_TESTD_ASAN) --sanitized

TEST_SUITES += server-tests server-tests-asan

# The generic unit rule links only the core libraries; obs tests need libfmw_obs.a. Listed in
# LDLIBS (after the archives of the rule) so that base is searched again after obs.
$(BUILD)/tests/unit/obs: $(call pkglibs,obs)
$(BUILD)/tests/unit/obs: LDLIBS += $(call pkglibs,base) -lpthread
