# pkg/kube's API client against scripted HTTP servers (tests/kube/).
#
#   make kube-client   the suite against build/tests/kube-get; under `make asan` it runs again
#                      against the sanitized build
.PHONY: kube-client

KUBE_GET := $(BUILD)/tests/kube-get

$(KUBE_GET): $(BUILD)/obj/tests/kube/kubeget.o $(call pkglibs,kube podspec tmmem jmmem flinkconf memsize obs http1 base)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS) -lpthread

# pkg/kube/cache.c with a scripted API read (no client): one interleaving timing cannot drive.
KUBE_CACHE_RACE := $(BUILD)/tests/kube-cache-race

$(KUBE_CACHE_RACE): $(BUILD)/obj/tests/kube/cacherace.o $(call pkglibs,obs base)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS) -lpthread

# A resolver that does not answer in time, preloaded into kube-get.
KUBE_SLOWDNS := $(BUILD)/tests/libslowdns.so

$(KUBE_SLOWDNS): tests/kube/slowdns.c
	@mkdir -p $(@D)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -shared -fPIC -o $@ $< -ldl

kube-client: $(KUBE_GET) $(KUBE_CACHE_RACE) $(KUBE_SLOWDNS) pydeps
	KUBE_GET=$(KUBE_GET) KUBE_CACHE_RACE=$(KUBE_CACHE_RACE) KUBE_SLOWDNS=$(KUBE_SLOWDNS) \
	    python3 -m pytest -q tests/kube

TEST_SUITES += kube-client
