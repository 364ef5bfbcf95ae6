# A real node beside the local control plane (tests/node/README.md): containerd and runc from
# Debian, a kubelet and kube-scheduler from the control plane's module (make tools), the chart's
# own pods and real Flink JobManagers on it.
#
#   make node-up       the control plane if it is not up, then the node, and the webhook's and the
#                      Flink images imported (NODE_FLINK_VERSIONS)
#   make node-down     the node stopped and every host change undone (the control plane stays)
#   make node          the suite: node-up, tests/node's tests, node-down, and a check that the host
#                      is as it was; skipped, with the reason, where this machine cannot run a node
#   make node-images   the Flink images alone (image/flink/build.sh), without importing them
.PHONY: node-up node-down node node-images

NODE_FLINK_VERSIONS ?= 1.18.1 2.1.0
export NODE_FLINK_VERSIONS

CLUSTER_SUITES += node
TEST_SUITES += node

node-up: all tools
	@source tests/cluster/lib.sh && { cluster_running || tests/cluster/up.sh; }
	@tests/node/up.sh
	@tests/node/images.sh webhook
	@tests/node/images.sh flink $(NODE_FLINK_VERSIONS)

node-down:
	@tests/node/down.sh

node-images:
	@for v in $(NODE_FLINK_VERSIONS); do image/flink/build.sh $$v $(BUILD)/node-images/flink-$$v || exit 1; done

node: all pydeps tools
	@tests/cluster/with-cluster.sh node tests/node/run.sh
