# End to end on the local control plane (mk/cluster.mk): the real API server calls the webhook.
.PHONY: e2e
CLUSTER_SUITES += e2e
TEST_SUITES += e2e

e2e: all pydeps tools $(BUILD)/tests/kube-get
	@KUBE_GET=$(BUILD)/tests/kube-get tests/cluster/with-cluster.sh e2e python3 -m pytest -q tests/e2e
