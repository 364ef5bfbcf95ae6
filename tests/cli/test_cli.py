"""Contract tests of the flink-memory CLI; the cases live in tests/data/cli-cases.json."""
import json
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("FLINK_MEMORY_BIN", os.path.join(ROOT, "build", "bin", "flink-memory"))
with open(os.path.join(ROOT, "tests", "data", "cli-cases.json")) as f:
    CASES = json.load(f)["cases"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_cli(case):
    p = subprocess.run([BIN] + case["args"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert p.returncode == case["exit"], p.stderr
    if "stdout_exact" in case:
        assert p.stdout == case["stdout_exact"]
    for i, line in enumerate(case.get("stdout_starts_with", [])):
        assert p.stdout.splitlines()[i] == line
    for text in case.get("stdout_contains", []):
        assert text in p.stdout
    for text in case.get("stderr_contains", []):
        assert text in p.stderr
    if "stdout_json" in case:
        assert p.stdout.endswith("\n") and p.stdout.count("\n") == 1, "one JSON line"
        got = json.loads(p.stdout)
        for key, want in case["stdout_json"].items():
            assert got.get(key, "<absent>") == want, key
        if "stdout_key_order" in case:
            assert list(got.keys()) == case["stdout_key_order"]


def test_taskmanager_cases_say_where_their_values_come_from():
    """Each --role taskmanager case names the Flink run its expected values were taken from."""
    cases = [c for c in CASES if "taskmanager" in c["args"]]
    assert cases
    for case in cases:
        assert case.get("from"), case["name"]


def test_kubectl_plugin_name_runs_the_same_program(tmp_path):
    plugin = tmp_path / "kubectl-flink_memory"
    plugin.symlink_to(BIN)
    p = subprocess.run([str(plugin), "size", "1600m", "--output", "json"], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0
    assert json.loads(p.stdout)["kubernetes"] == "1600Mi"


def _kubectl():
    built = os.path.join(ROOT, "build", "tools", "bin", "kubectl")
    if os.access(built, os.X_OK):
        return built
    import shutil
    return shutil.which("kubectl")


@pytest.mark.skipif(_kubectl() is None, reason="no kubectl on this machine yet")
def test_kubectl_discovers_the_plugin(tmp_path):
    (tmp_path / "kubectl-flink_memory").symlink_to(BIN)
    env = dict(os.environ, PATH=f"{tmp_path}:{os.environ['PATH']}")
    p = subprocess.run([_kubectl(), "flink-memory", "size", "2Gi", "--output", "json"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["flink"] == "2 gb"
