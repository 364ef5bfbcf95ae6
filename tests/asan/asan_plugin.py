"""pytest plugin for `make asan`: runs the suites with the sanitized binaries.

The suites name their binaries as module globals holding paths under build/bin/ (WEBHOOK, CLI,
BIN), in test modules or helper modules under tests/. After collection this points every such global at the file of the same name in
$FMW_ASAN_BIN, so the tests themselves stay unchanged. A suite whose binaries cannot all be
swapped fails rather than silently testing the normal build.
"""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NORMAL = os.path.join(ROOT, "build", "bin")


def pytest_collection_finish(session):
    asan_bin = os.environ.get("FMW_ASAN_BIN")
    if not asan_bin:
        raise pytest.UsageError("asan_plugin: FMW_ASAN_BIN is not set")
    tests_dir = os.path.join(ROOT, "tests") + os.sep
    modules = {id(m): m for m in list(sys.modules.values())
               if (getattr(m, "__file__", None) or "").startswith(tests_dir)}
    for item in session.items:
        module = getattr(item, "module", None)
        if module is not None:
            modules[id(module)] = module
    for module in modules.values():
        for name, value in list(vars(module).items()):
            if isinstance(value, str) and os.path.dirname(value) == NORMAL:
                swapped = os.path.join(asan_bin, os.path.basename(value))
                if not os.access(swapped, os.X_OK):
                    raise pytest.UsageError(f"asan_plugin: no sanitized {swapped}")
                setattr(module, name, swapped)
                print(f"asan_plugin: {module.__name__}.{name} -> {swapped}")
