"""Fixtures shared by the hostile suites."""
import pytest

from harness import fresh_webhook


@pytest.fixture
def webhook():
    """A fresh webhook with the default flags for one test, so its peak RSS is that test's."""
    yield from fresh_webhook("fmw-hostile-one-")
