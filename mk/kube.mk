# pkg/kube's API client against scripted HTTP servers (tests/kube/).
#
#   make kube-client   the suite against build/tests/kube-get; under `make asan` it runs again
#                      against the sanitized build
.PHONY: kube-client

KUBE_GET := $(BUILD)/tests/kube-get

$(KUBE_GET): $(BUILD)/obj/tests/kube/kubeget.o $(call pkglibs,kube podspec jmmem flinkconf memsize obs http1 base)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS) -lpthread

kube-client: $(KUBE_GET) pydeps
	KUBE_GET=$(KUBE_GET) python3 -m pytest -q tests/kube

TEST_SUITES += kube-client
