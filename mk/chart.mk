# The Helm chart, the static install, the image and `make run` (issue 5).
#
#   make chart            helm lint + template for each TLS mode, schema, static manifests, README
#                         values table, and `flink-memory explain` of each example (offline)
#   make chart-cluster    the rendered chart accepted by the real API server (restricted
#                         namespace too); helm install / upgrade / uninstall on the local control
#                         plane with the webhook run from the image's rootfs as the chart's
#                         ServiceAccount
#   make run-once         `make run` without waiting for Ctrl-C: the form CI runs
#   make image-rootfs     the image's root filesystem without a container engine (build/image/rootfs)
#   make image-test       runs the webhook from that rootfs: chroot, read-only, uid 65532
#   make image            the OCI image without an engine: build/image/flink-memory-webhook.oci.tar,
#                         build/image/oci (layout) and build/image/digest (image/image.sh)
#   make image-push IMAGE=REGISTRY/NAME:TAG   pushes that image (crane); prints NAME@digest
#   make image-oci        tests the image: reproducible digest, config, a registry on 127.0.0.1,
#                         pulled back by digest and run from its unpacked layer (tests/image)
#   make image-docker     the same image with a container engine (image/Dockerfile)
#   make manifests        rewrites manifests/install.yaml from the chart
#   make chart-docs       rewrites the values table in charts/flink-memory-webhook/README.md
#   make chart-expected   rewrites tests/chart/expected/*.txt from `flink-memory explain`
.PHONY: chart chart-cluster run-once image image-push image-oci image-docker image-rootfs image-test manifests \
        chart-docs chart-expected

CHART        := charts/flink-memory-webhook
IMAGE_ROOTFS := $(BUILD)/image/rootfs
IMAGE_TAG    ?= flink-memory-webhook:$(VERSION)
IMAGE_OUT    := $(BUILD)/image

TEST_SUITES    += chart image-test image-oci chart-cluster run-once
CLUSTER_SUITES += chart-cluster run-once

chart: all pydeps tools
	python3 -m pytest -q tests/chart/test_chart.py

chart-cluster: all pydeps tools image-rootfs
	@tests/cluster/with-cluster.sh chart-cluster python3 -m pytest -q tests/chart/test_chart_cluster.py

run-once: all tools
	@tests/cluster/with-cluster.sh run-once scripts/run.sh --once

image-rootfs: $(BUILD)/bin/flink-memory-webhook
	@image/rootfs.sh $(BUILD)/bin/flink-memory-webhook $(IMAGE_ROOTFS)

image-test: image-rootfs
	@image/test-rootfs.sh $(IMAGE_ROOTFS)

image: image-rootfs
	@VERSION=$(VERSION) image/image.sh build $(IMAGE_ROOTFS) $(IMAGE_OUT)

# IMAGE is checked while make reads this file, so a forgotten IMAGE costs one line, not a build.
ifneq ($(filter image-push,$(MAKECMDGOALS)),)
ifeq ($(strip $(IMAGE)),)
$(error image-push needs IMAGE=REGISTRY/NAME:TAG, e.g. make image-push IMAGE=registry.example/flink-memory-webhook:$(VERSION))
endif
endif
image-push: image
	@image/image.sh push $(IMAGE_OUT) "$(IMAGE)"

image-oci: pydeps image
	python3 -m pytest -q tests/image

image-docker:
	@docker info >/dev/null 2>&1 || { echo "image-docker: no container engine answers (docker info" \
	    "failed); make image builds the same image without one" >&2; exit 1; }
	docker build -f image/Dockerfile --build-arg VERSION=$(VERSION) \
	    --build-arg REVISION=$$(git rev-parse HEAD) -t $(IMAGE_TAG) .

manifests: tools
	@tests/chart/render-install.sh > manifests/install.yaml
	@echo "manifests/install.yaml rewritten from $(CHART)"

chart-docs: pydeps
	@python3 tests/chart/readme.py --write

chart-expected: all
	@for f in manifests/examples/*.yaml; do \
	    n=$$(basename $$f .yaml); \
	    $(BUILD)/bin/flink-memory explain -f $$f > tests/chart/expected/$$n.txt; \
	    echo "tests/chart/expected/$$n.txt"; \
	done
